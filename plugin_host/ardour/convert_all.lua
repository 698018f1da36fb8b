ardour {
	["type"] = "EditorAction",
	name = "midibridge: convert all audio tracks to MIDI (batch)",
	license = "Apache-2.0",
	author = "midibridge",
	description = [[Transcribe every audio region of every audio track with midibridge, in parallel through its daemon. Each track gets a "<track> MIDI" track with a MIDI region per audio region, at the same positions. Progress and Cancel in a window; one Undo removes it all.]]
}

function action_params ()
	return { ["preset"] = { title = "midibridge preset (@PRESETS@)", default = "default" } }
end

-- Ardour keeps only this function: everything the action needs is inside it.
function factory (params) return function ()
	-- @MIDIBRIDGE@ (`midibridge install ardour` puts MB_COMMAND and the core and editor code here)
	MB.action (function ()
		MB.run_in_editor (MB.audio_regions_of_tracks (Session, {}), (params or {})["preset"])
	end)
end end
