-- midibridge in Ardour's editor: progress, cancel, the report and Undo, for both action scripts.

-- Run an action's body. Ardour drops an action from its slot (and from the saved `ui_scripts`) when the
-- action raises an error, so no error may leave here: it is shown instead.
function MB.action (body)
	local ok, err = pcall (body)
	if not ok then
		LuaDialog.Message ("midibridge: failed", "midibridge stopped with an error:\n" .. tostring (err) ..
			"\n\nPlease report it, with Window › Log.", LuaDialog.MessageType.Error, LuaDialog.ButtonType.Close):run ()
	end
end

-- The report for people: one paragraph per region, where it is and what became of it.
function MB.report_text (jobs, made)
	local failed, lines = 0, {}
	for _, job in ipairs (jobs) do
		local outcome
		if job.error then
			failed = failed + 1
			outcome = "not converted: " .. job.error
		else
			outcome = string.format ("%d notes → track \"%s MIDI\"", #job.notes, job.track_name)
		end
		table.insert (lines, string.format ("%s  (track %s)\n    at bar %s = %.3f s:  %s", job.name, job.track_name,
			job.bbt, job.pos / job.rate, outcome))
	end
	local head = string.format ("Converted %d of %d region(s).", #jobs - failed, #jobs)
	if made > 0 then head = head .. "  Edit › Undo removes them all." end
	return head .. "\n\n" .. table.concat (lines, "\n\n"), failed
end

function MB.run_in_editor (items, preset)
	if #items == 0 then
		LuaDialog.Message ("midibridge", "Select one or more audio regions first (or use the batch action).",
			LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
		return
	end
	local jobs = MB.describe (Session, items)
	local dialog = LuaDialog.ProgressWindow ("midibridge: audio to MIDI", true)
	local title = string.format ("Transcribing %d region(s): ", #jobs)
	local function progress (fraction, status) return dialog:progress (fraction, title .. status) end
	progress (0, "starting…")  -- the window shows now, before midibridge says anything
	local outcome = MB.transcribe (jobs, preset, progress)
	dialog:done ()
	if outcome == "cancelled" then
		LuaDialog.Message ("midibridge: cancelled", "Cancelled: the session is unchanged.", LuaDialog.MessageType.Info,
			LuaDialog.ButtonType.Close):run ()
		return
	end
	local made = MB.apply (Session, jobs)
	if made > 0 then
		-- The editor makes Undo clickable only in its own commit or redo (Editor::history_changed sets
		-- the label, not the sensitivity), never for a Session transaction. After a commit there is
		-- nothing to redo: this only makes our step undoable from Edit › Undo.
		Editor:redo (1)
	end
	local text, failed = MB.report_text (jobs, made)
	LuaDialog.Message ("midibridge: report", text,
		failed > 0 and LuaDialog.MessageType.Warning or LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
end
