"""API views by area; each parses input, calls one service or selector, and renders."""
