"""Applications (办件): submission, drafts, withdrawal, materials and history."""
