ardour {
	["type"] = "EditorAction",
	name = "midibridge: convert selected regions to MIDI",
	license = "Apache-2.0",
	author = "midibridge",
	description = [[Transcribe each selected audio region with midibridge. A MIDI region with its notes appears on the track "<source track> MIDI", at exactly the audio region's position and length, holding the notes of the part of the audio the region plays; it replaces the MIDI region an earlier run made from the same audio region, unless the slot says keep. One Undo undoes it all.]]
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
		local items = {}
		for region in Editor:get_selection ().regions:regionlist ():iter () do
			if not region:to_audioregion ():isnil () then
				local track = MB.track_of (Session, region)
				if track then table.insert (items, { region = region, track = track }) end
			end
		end
		MB.run_in_editor (items, params)
	end)
end end
