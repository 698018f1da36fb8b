ardour {
	["type"] = "EditorAction",
	name = "midibridge: convert all audio tracks to MIDI (batch)",
	license = "Apache-2.0",
	author = "midibridge",
	description = [[Transcribe every audio region of every audio track with midibridge, in parallel through
its daemon. Each track gets a "<track> MIDI" track with a MIDI region per audio region, at the
same positions. Progress and cancel in a dialog; one undo step undoes it all.]]
}

function action_params ()
	return { ["preset"] = { title = "midibridge preset (default, piano, guitar, bass, vocal, strings-pad, noisy-recording)", default = "default" } }
end

function factory (params) return function ()
	MB.run_in_editor (MB.audio_regions_of_tracks (Session, {}), (params or {})["preset"])
end end
