"""Small, isolated workarounds for third-party packaging problems (each module says which and why)."""
