-- Test helper: Ardour on the JACK backend (the server JACK_DEFAULT_SERVER names) records a new MIDI track, "live",
-- whose input is another client's MIDI output, as a musician arms a track and presses record.
-- arguments: dir name control_dir. Once it records it writes its track's MIDI input port to control_dir/rolling
-- (to connect a source to); it stops when control_dir/stop appears, then saves the session.
local dir, name, control = arg[1], arg[2], arg[3]

local function exists (path)
	local file = io.open (path, "r")
	if file then file:close () end
	return file ~= nil
end

-- Each stage is said as it is reached (flushed), so a test that gives up waiting shows where Ardour stood.
local function say (stage)
	print (stage)
	io.stdout:flush ()
end

assert (AudioEngine:set_backend ("JACK", "ardour", ""), "no JACK backend")
say ("backend JACK")
local session = assert (create_session (dir, name, 48000), "create_session failed")
say ("session created")
local list = session:new_midi_track (ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1),
	ARDOUR.ChanCount (ARDOUR.DataType ("audio"), 2), false, ARDOUR.PluginInfo (), nil, nil, 1, "live",
	ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
local track
for t in list:iter () do track = t end
track:rec_enable_control ():set_value (1, PBD.GroupControlDisposition.NoGroup)
session:maybe_enable_record (false)
session:request_roll (ARDOUR.TransportRequestSource.TRS_UI)
say ("roll requested")
while not session:transport_rolling () do
	-- JACK now and then drops a client creating its session on a busy machine ("JACK HALTED"): no roll can come,
	-- so say so and end, for the test to start Ardour again.
	if not AudioEngine:running () then
		say ("ENGINE HALTED")
		os.exit (3)
	end
	ARDOUR.LuaAPI.usleep (10000)
end
assert (session:actively_recording (), "not recording")
local rolling = io.open (control .. "/rolling.partial", "w")
rolling:write (track:input ():nth (0):name ())
rolling:close ()
os.rename (control .. "/rolling.partial", control .. "/rolling")
while not exists (control .. "/stop") do ARDOUR.LuaAPI.usleep (20000) end
session:request_stop (false, false, ARDOUR.TransportRequestSource.TRS_UI)
while session:transport_rolling () do ARDOUR.LuaAPI.usleep (10000) end
ARDOUR.LuaAPI.usleep (500000)  -- the butler writes the take
assert (session:save_state ("") == 0)
list, track, session = nil, nil, nil
collectgarbage ()
close_session ()
print ("RECORDED")
