from hypothesis import settings

# 15 examples for properties without their own settings: the suite must stay under 5 minutes on
# 2 cores (each solver property runs per solver; tests that need more examples set their own)
settings.register_profile("ci", max_examples=15, deadline=None)
settings.load_profile("ci")
