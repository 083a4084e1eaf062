"""Shapes of what the API reads and writes, one module per area, mirroring `views/`.

Input serializers only check the shape DRF must know (types for the schema, required keys);
the rules themselves (a ranking covers every candidate once, a chat ends with a user message,
job parameters) stay in the services, which name the field they reject.
"""
