"""
What comes in: caller images checked and converted to RGB, and frames read from files.

Everything past this stage may assume a valid RGB uint8 image. Imports only the shared
vocabulary and models.
"""
