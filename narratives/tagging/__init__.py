"""Narrative tagging: taxonomies, the tagger and its heads, and training taggers on
labelled posts."""
