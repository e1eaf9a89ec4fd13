"""The demo shop's business data: orders, tickets and the intent names its flows use.

Everything specific to the demo assistant lives here; a project of your own replaces it.
"""
