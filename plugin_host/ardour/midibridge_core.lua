-- midibridge core for Ardour 7: audio regions in, MIDI regions out, through the `midibridge` command.
--
-- Shared by the editor action scripts and `midibridge ardour convert` (headless). Action scripts
-- cannot `require`, and Ardour keeps only an action script's `factory` function (dumped to bytecode):
-- so `midibridge install ardour` puts this file, behind a line setting MB_COMMAND (the shell command
-- that runs `midibridge host transcribe`), inside each action's factory, and the headless runner in
-- front of its script. Everything here is local to that chunk.
--
-- Per region: source file, trim (start), length, timeline position, the session rate and the
-- tempo map at the region go to `midibridge host transcribe`, which answers one line per note
-- in seconds from the region start. Notes go into a new MIDI region at the same position and
-- length, on a MIDI track named "<source track> MIDI" (made, or reused), seconds turned into beats
-- with the session's tempo map; a drum region's notes (GM drum sounds on channel 10) go to a track
-- "<source track> Drums". The MIDI regions an earlier run made from the same audio region are
-- replaced (or kept beside the new one, when asked). All regions of a run, and the removal of the
-- ones they replace, are one undoable operation.

local MB = {}

function MB.quote (s)
	return "'" .. (tostring (s):gsub ("'", "'\\''")) .. "'"
end

-- The track whose playlist holds `region`.
function MB.track_of (session, region)
	local playlist_id = region:playlist ():to_stateful ():id ():to_s ()
	for route in session:get_tracks ():iter () do
		local track = route:to_track ()
		if not track:isnil () and track:playlist ():to_stateful ():id ():to_s () == playlist_id then
			return track
		end
	end
	return nil
end

-- Every audio region of the tracks whose names are in `names` (all audio tracks when `names` is empty).
function MB.audio_regions_of_tracks (session, names)
	local wanted = {}
	for _, n in ipairs (names or {}) do wanted[n] = true end
	local found = {}
	for route in session:get_tracks ():iter () do
		local track = route:to_track ()
		if not track:to_audio_track ():isnil () and (next (wanted) == nil or wanted[track:name ()]) then
			for region in track:playlist ():region_list ():iter () do
				if not region:to_audioregion ():isnil () then
					table.insert (found, { region = region, track = track })
				end
			end
		end
	end
	return found
end

-- What midibridge needs to know of each region, read before anything changes.
function MB.describe (session, items)
	local tm = Temporal.TempoMap.read ()
	local rate = session:nominal_sample_rate ()
	local jobs = {}
	for i, item in ipairs (items) do
		local r = item.region
		local job = { id = i, region = r, track = item.track, track_name = item.track:name (), name = r:name (),
			pos = r:position ():samples (), len = r:length ():samples (), start = r:start ():samples (), rate = rate }
		local source = r:source (0):to_filesource ()
		if source:isnil () then
			job.error = "region has no file source"
		else
			job.path = source:path ()
		end
		-- One sample in: exactly at a tempo change, the map still answers with the tempo before it.
		local at = Temporal.timepos_t (job.pos + 1)
		local meter = tm:meter_at (at)
		local bbt = tm:bbt_at (Temporal.timepos_t (job.pos))
		job.bpm = tm:quarters_per_minute_at (at)
		job.beats_per_bar = meter:divisions_per_bar () * 4 / meter:note_value ()
		job.bar_offset = ((bbt.beats - 1) + bbt.ticks / Temporal.ticks_per_beat) * 4 / meter:note_value ()
		job.bbt = string.format ("%d|%d|%d", bbt.bars, bbt.beats, bbt.ticks)
		table.insert (jobs, job)
	end
	return jobs
end

-- Ask midibridge for the notes of every job. `progress (fraction, status)` is called at least every
-- few tenths of a second while midibridge runs (so an editor can repaint) and may return true to cancel.
-- Fills job.notes ({start_s, end_s, pitch, velocity, channel}), job.bends ({channel, time_s, semitones})
-- and job.drums (midibridge's drum engine made the notes), or job.error.
-- Returns "done", "cancelled", or "failed" (midibridge stopped early; MB.failure says why).
function MB.transcribe (jobs, preset, progress)
	local request = os.tmpname ()
	local file = assert (io.open (request, "w"))
	for _, job in ipairs (jobs) do
		if not job.error then
			-- Samples become seconds here; midibridge rounds them back to exactly these samples.
			file:write (string.format ("%d\t%s\t%.12f\t%.12f\t%.12f\t%.9f\t%.9f\t%.9f\n", job.id, job.path,
				job.start / job.rate, job.len / job.rate, job.pos / job.rate, job.bpm, job.beats_per_bar, job.bar_offset))
		end
	end
	file:close ()
	local command = MB_COMMAND .. " " .. MB.quote (request)
	if preset and preset ~= "" then command = command .. " --preset " .. MB.quote (preset) end
	local by_id = {}
	for _, job in ipairs (jobs) do by_id[job.id] = job end
	local pipe = assert (io.popen (command .. " 2>&1", "r"))
	local cancelled, finished = false, false
	local fraction, status = 0, "starting the transcriber…"
	for line in pipe:lines () do
		local kind, rest = line:match ("^(%u+) ?(.*)$")
		if kind == "N" then
			local id, s, e, pitch, velocity, channel = rest:match ("^(%d+) (%S+) (%S+) (%d+) (%d+) (%d+)$")
			table.insert (by_id[tonumber (id)].notes,
				{ tonumber (s), tonumber (e), tonumber (pitch), tonumber (velocity), tonumber (channel) })
		elseif kind == "B" then
			local id, channel, t, semitones = rest:match ("^(%d+) (%d+) (%S+) (%S+)$")
			table.insert (by_id[tonumber (id)].bends, { tonumber (channel), tonumber (t), tonumber (semitones) })
		elseif kind == "NOTES" then
			local id, words = rest:match ("^(%d+) %d+ ?(.*)$")
			local job = by_id[tonumber (id)]
			job.notes, job.bends, job.drums = {}, {}, words == "drums"
		elseif kind == "ERROR" then
			local id, message = rest:match ("^(%d+) (.*)$")
			by_id[tonumber (id)].error = message
		elseif kind == "PROGRESS" or kind == "STATUS" then
			if kind == "PROGRESS" then fraction = tonumber (rest) else status = rest end
			-- Closing the pipe is how midibridge learns of the cancel: it stops its jobs and exits.
			if progress and progress (fraction, status) then
				cancelled = true
				break
			end
		elseif kind == "DONE" then
			finished = true
		elseif line ~= "" then
			MB.failure = (MB.failure or "") .. line .. "\n"  -- midibridge itself failed: keep what it said
		end
	end
	pipe:close ()
	os.remove (request)
	for _, job in ipairs (jobs) do
		if not job.notes and not job.error then
			job.error = cancelled and "cancelled" or ("midibridge gave no answer: " .. (MB.failure or "?"))
		end
	end
	return cancelled and "cancelled" or (finished and "done" or "failed")
end

-- The MIDI track called `name` ("<source track> MIDI" or "<source track> Drums"), made when missing.
function MB.midi_track (session, name)
	local route = session:route_by_name (name)
	if not route:isnil () and not route:to_track ():to_midi_track ():isnil () then
		return route:to_track ()
	end
	local list = session:new_midi_track (ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1),
		ARDOUR.ChanCount (ARDOUR.DataType ("audio"), 2), false, ARDOUR.PluginInfo (), nil, nil, 1, name,
		ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
	for track in list:iter () do return track end
end

-- The MIDI regions an earlier run made from a job's audio region, as that run left them: on the source
-- track's " MIDI" or " Drums" track, named after the audio region, at exactly its position and length.
-- (Ardour's Lua can store nothing of its own on a region: its name, place and length are what tell.)
-- One the user moved, trimmed or renamed is theirs now, and is left alone.
function MB.earlier_regions (session, job)
	local found = {}
	for _, kind in ipairs ({ " MIDI", " Drums" }) do
		local route = session:route_by_name (job.track_name .. kind)
		if not route:isnil () and not route:to_track ():to_midi_track ():isnil () then
			local playlist = route:to_track ():playlist ()
			for region in playlist:region_list ():iter () do
				if region:name () == job.name .. kind and region:position ():samples () == job.pos
						and region:length ():samples () == job.len then
					table.insert (found, { region = region, playlist = playlist })
				end
			end
		end
	end
	return found
end

-- A new MIDI region (and source) `len` samples long holding nothing. Ardour's Lua makes MIDI sources only by
-- bouncing a MIDI track, which copies what its playlist plays in the range: so bounce a stretch after the
-- playlist's last region, where it plays nothing. (Bouncing the job's own range would copy the notes and
-- pitch-wheel events of an earlier run's region there into the new one.)
function MB.empty_midi_region (track, len, name)
	local after = 0
	for region in track:playlist ():region_list ():iter () do
		after = math.max (after, (region:position () + region:length ()):samples ())
	end
	return track:bounce_range (after, after + len, ARDOUR.InterThreadInfo (), ARDOUR.LuaAPI.nil_proc (), false, name)
end

-- New MIDI regions holding the notes, as one undoable operation that also removes the regions earlier runs
-- made from the same audio regions (MB.earlier_regions), unless `keep_earlier`. Returns the number of regions
-- made; each job that made one gets job.earlier, the earlier regions found (replaced, or kept).
function MB.apply (session, jobs, keep_earlier)
	local tm = Temporal.TempoMap.read ()
	-- Found before anything is made: a region made below looks just like an earlier run's.
	for _, job in ipairs (jobs) do
		if job.notes then job.earlier = MB.earlier_regions (session, job) end
	end
	local made = {}
	for _, job in ipairs (jobs) do
		if job.notes then
			-- Tracks first: making a track is never undoable in Ardour.
			local kind = job.drums and " Drums" or " MIDI"
			job.midi_track = MB.midi_track (session, job.track_name .. kind)
			job.midi_region = MB.empty_midi_region (job.midi_track, job.len, job.name .. kind)
			local model = job.midi_region:to_midiregion ():model ()
			local diff = model:new_note_diff_command ("midibridge: add notes")
			local origin = tm:quarters_at (Temporal.timepos_t (job.pos))
			local function beats (seconds)
				return tm:quarters_at (Temporal.timepos_t (job.pos + math.floor (seconds * job.rate + 0.5))) - origin
			end
			for _, n in ipairs (job.notes) do
				local on = beats (n[1])
				diff:add (ARDOUR.LuaAPI.new_noteptr (n[5], on, beats (n[2]) - on, n[3], n[4]))
			end
			MB.add_bends (job.midi_region:to_midiregion (), job.bends, beats)
			-- apply_command opens an undo transaction of its own; run it inside a throwaway one (which
			-- Ardour aborts, keeping the command) so the command can join the single transaction below.
			session:begin_reversible_command ("midibridge (discarded)")
			model:apply_command (session, diff)
			job.diff = diff
			table.insert (made, job)
		end
	end
	if #made == 0 then return 0 end
	session:begin_reversible_command ("midibridge: audio to MIDI")
	local removed = {}
	for _, job in ipairs (made) do
		local replaced = keep_earlier and {} or job.earlier
		-- The playlists this job changes, each once: the diff of each holds this job's changes to it.
		local changed, playlists, seen = { job.midi_track:playlist () }, {}, {}
		for _, earlier in ipairs (replaced) do table.insert (changed, earlier.playlist) end
		for _, playlist in ipairs (changed) do
			local id = playlist:to_stateful ():id ():to_s ()
			if not seen[id] then
				seen[id] = true
				playlist:to_stateful ():clear_changes ()
				table.insert (playlists, playlist)
			end
		end
		for _, earlier in ipairs (replaced) do
			local id = earlier.region:to_stateful ():id ():to_s ()
			if not removed[id] then  -- two audio regions alike in name and place find the same earlier region
				earlier.playlist:remove_region (earlier.region)
				removed[id] = true
			end
		end
		job.midi_track:playlist ():add_region (job.midi_region, Temporal.timepos_t (job.pos), 1, false, 0, 0, false)
		for _, playlist in ipairs (playlists) do session:add_stateful_diff_command (playlist:to_statefuldestructible ()) end
		session:add_command (job.diff)
	end
	if not session:abort_empty_reversible_command () then
		session:commit_reversible_command (nil)
	end
	return #made
end

-- Pitch-wheel events in a new region's pitch-bender controls, one per channel, at the General MIDI bend
-- range (±2 semitones: what a synth assumes without being told). `beats (seconds)` places them.
function MB.add_bends (region, bends, beats)
	for _, b in ipairs (bends) do
		local parameter = Evoral.Parameter (ARDOUR.AutomationType.MidiPitchBenderAutomation, b[1], 0)
		local wheel = math.max (-8192, math.min (8191, math.floor (b[3] * 8192 / 2 + 0.5)))
		-- Ardour 7's Lua shows a Beats' ticks only in its "beats:ticks" text.
		local at_beats, at_ticks = beats (b[2]):str ():match ("^(-?%d+):(-?%d+)$")
		local at = Temporal.timepos_t.from_ticks (tonumber (at_beats) * Temporal.ticks_per_beat + tonumber (at_ticks))
		region:control (parameter, true):list ():add (at, 8192 + wheel, false, false)
	end
end

-- One line per region for `midibridge ardour convert` to read: track, position, then notes and the earlier
-- regions found (replaced or kept), or the error.
function MB.report (jobs)
	local lines, failed = {}, 0
	for _, job in ipairs (jobs) do
		local where = string.format ("%s\t%.6f", job.track_name, job.pos / job.rate)
		if job.error then
			failed = failed + 1
			table.insert (lines, string.format ("FAILED\t%s\t%s\t%s", where, job.name, job.error))
		else
			table.insert (lines, string.format ("REGION\t%s\t%d\t%d", where, #job.notes, #(job.earlier or {})))
		end
	end
	return lines, failed
end
