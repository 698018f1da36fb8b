"""midibridge's built-in presets: one TOML file each, read by model.presets."""
