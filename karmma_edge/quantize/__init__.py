"""From a trained student to the bundle: export per profile, Q/DQ INT8, accuracy gate, engines."""
