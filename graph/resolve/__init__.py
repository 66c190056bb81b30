"""One record per person (一数一源): ID-number validation (GB 11643-1999), person resolution with
Splink, and matching of the death and custody registries (docs/resolution.md)."""
