"""What chapters compute as a library, between the interventions and the figures: per-model computations
cached in the results cache, and the tables several chapters read (STYLE §1: chapters are leaves)."""
