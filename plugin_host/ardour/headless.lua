-- `midibridge ardour convert`: the same conversion, run by ardour7-lua over a saved session.
-- arguments: session dir, session (snapshot) name, preset ("" for the default), "keep" or "replace" (the MIDI
-- regions earlier runs made from the same audio regions), track names (none: all audio tracks)

-- @MIDIBRIDGE@ (the runner puts MB_COMMAND and the core here)

local dir, name, preset, earlier = arg[1], arg[2], arg[3], arg[4]
local tracks = {}
for i = 5, #arg do table.insert (tracks, arg[i]) end

local session = load_session (dir, name)
if not session then
	print ("MB FATAL cannot load the session " .. name .. " in " .. dir)
	return
end
local jobs = MB.describe (session, MB.audio_regions_of_tracks (session, tracks))
MB.transcribe (jobs, preset, function (fraction) print (string.format ("MB PROGRESS %.3f", fraction)) end)
MB.apply (session, jobs, earlier == "keep")
if session:save_state ("") ~= 0 then print ("MB FATAL saving the session failed") end
local lines, failed = MB.report (jobs)
for _, line in ipairs (lines) do print ("MB " .. line) end
print (string.format ("MB SUMMARY %d %d", #jobs - failed, failed))
-- Ardour crashes or hangs when Lua still holds session objects as it closes the session.
jobs, session = nil, nil
collectgarbage ()
close_session ()
