-- midibridge in Ardour's editor: progress, cancel and the report, for both action scripts.

function MB.run_in_editor (items, preset)
	if #items == 0 then
		LuaDialog.Message ("midibridge", "Select one or more audio regions first (or use the batch action).",
			LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
		return
	end
	local jobs = MB.describe (Session, items)
	local dialog = LuaDialog.ProgressWindow ("midibridge: audio to MIDI", true)
	local text = string.format ("Transcribing %d region(s)", #jobs)
	local outcome = MB.transcribe (jobs, preset, function (fraction) return dialog:progress (fraction, text) end)
	dialog:done ()
	if outcome == "cancelled" then
		LuaDialog.Message ("midibridge", "Cancelled: the session is unchanged.", LuaDialog.MessageType.Info,
			LuaDialog.ButtonType.Close):run ()
		return
	end
	MB.apply (Session, jobs)
	local lines, failed = MB.report (jobs)
	LuaDialog.Message ("midibridge", table.concat (lines, "\n"),
		failed > 0 and LuaDialog.MessageType.Warning or LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
end
