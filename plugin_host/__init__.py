"""midibridge on the host's side: the thin daemon client, where work runs (runner's backends), the `midibridge`
command and the DAW adapters."""
