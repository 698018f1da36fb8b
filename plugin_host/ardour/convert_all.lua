ardour {
	["type"] = "EditorAction",
	name = "midibridge: convert all audio tracks to MIDI (batch)",
	license = "Apache-2.0",
	author = "midibridge",
	description = [[Transcribe every audio region of every audio track with midibridge, in parallel through its daemon. Each track gets a "<track> MIDI" track with a MIDI region per audio region, at the same positions, replacing those an earlier run made from the same audio regions unless the slot says keep. Progress and Cancel in a window; one Undo undoes it all.]]
}

function action_params ()
	return { ["preset"] = { title = "midibridge preset (@PRESETS@)", default = "default" },
		["earlier"] = { title = "MIDI regions an earlier run made from the same audio region: replace or keep",
			default = "replace" } }
end

-- Ardour keeps only this function: everything the action needs is inside it.
function factory (params) return function ()
	-- @MIDIBRIDGE@ (`midibridge install ardour` puts MB_COMMAND and the core and editor code here)
	MB.action (function ()
		MB.run_in_editor (MB.audio_regions_of_tracks (Session, {}), params)
	end)
end end
