"""es_mappings stage."""
