"""Enrichment: IP intelligence (shared.enrich.ipintel) and related lookups."""
