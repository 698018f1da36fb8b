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
function MB.report_text (jobs, made, keep_earlier)
	local failed, replaced, lines = 0, false, {}
	for _, job in ipairs (jobs) do
		local outcome
		if job.error then
			failed = failed + 1
			outcome = "not converted: " .. job.error
		else
			outcome = string.format ("%d notes → track \"%s%s\"", #job.notes, job.track_name, job.drums and " Drums" or " MIDI")
			if #job.earlier > 0 then
				local earlier = #job.earlier == 1 and "the region an earlier run" or
					string.format ("the %d regions earlier runs", #job.earlier)
				outcome = outcome .. (keep_earlier and ", beside " or ", replacing ") .. earlier .. " made from it"
				replaced = replaced or not keep_earlier
			end
		end
		table.insert (lines, string.format ("%s  (track %s)\n    at bar %s = %.3f s:  %s", job.name, job.track_name,
			job.bbt, job.pos / job.rate, outcome))
	end
	local head = string.format ("Converted %d of %d region(s).", #jobs - failed, #jobs)
	if made > 0 then
		head = head .. (replaced and "  Edit › Undo removes them all and brings back what they replaced." or
			"  Edit › Undo removes them all.")
	end
	return head .. "\n\n" .. table.concat (lines, "\n\n"), failed
end

-- `params`: the action's settings as set in its slot; a slot set before midibridge had "earlier" lacks it.
function MB.run_in_editor (items, params)
	local preset, earlier = (params or {})["preset"], (params or {})["earlier"] or "replace"
	if earlier ~= "replace" and earlier ~= "keep" then
		LuaDialog.Message ("midibridge: check the slot", "This slot's setting for the MIDI regions an earlier run made "
			.. "is \"" .. earlier .. "\": it takes replace or keep. Set the slot again in Edit › Lua Scripts › Script "
			.. "Manager.", LuaDialog.MessageType.Error, LuaDialog.ButtonType.Close):run ()
		return
	end
	local keep_earlier = earlier == "keep"
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
	local made = MB.apply (Session, jobs, keep_earlier)
	if made > 0 then
		-- The editor makes Undo clickable only in its own commit or redo (Editor::history_changed sets
		-- the label, not the sensitivity), never for a Session transaction. After a commit there is
		-- nothing to redo: this only makes our step undoable from Edit › Undo.
		Editor:redo (1)
	end
	local text, failed = MB.report_text (jobs, made, keep_earlier)
	LuaDialog.Message ("midibridge: report", text,
		failed > 0 and LuaDialog.MessageType.Warning or LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
end
