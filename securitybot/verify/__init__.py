"""Out-of-band verification of "it was me" (Duo push today; another factor can be added)."""
