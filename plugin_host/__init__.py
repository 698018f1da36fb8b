"""midibridge on the host's side: the thin daemon client, the `midibridge` command and the DAW adapters."""
