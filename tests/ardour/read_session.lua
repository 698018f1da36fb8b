-- Test helper: every region of a saved session, audio and MIDI, and every MIDI note, in lines:
--   AREGION|track|position|start|length|path
--   MREGION|track|position|length|start_ticks|smf_path
--   NOTE|track|region position|time_ticks|length_ticks|note|velocity|channel|absolute sample
local dir, name = arg[1], arg[2]

local function ticks (beats)
	local b, t = beats:str ():match ("^(-?%d+):(-?%d+)$")
	return tonumber (b) * Temporal.ticks_per_beat + tonumber (t)
end

local session = assert (load_session (dir, name), "load_session failed")
local tm = Temporal.TempoMap.read ()
for route in session:get_tracks ():iter () do
	local track = route:to_track ()
	for region in track:playlist ():region_list ():iter () do
		local pos = region:position ():samples ()
		local path = region:source (0):to_filesource ():path ()
		if not region:to_audioregion ():isnil () then
			print (string.format ("AREGION|%s|%d|%d|%d|%s", track:name (), pos, region:start ():samples (),
				region:length ():samples (), path))
		else
			local midi = region:to_midiregion ()
			local origin = tm:quarters_at (region:position ())
			print (string.format ("MREGION|%s|%d|%d|%d|%s", track:name (), pos, region:length ():samples (),
				ticks (region:start ():beats ()), path))
			for note in ARDOUR.LuaAPI.note_list (midi:model ()):iter () do
				local at = tm:sample_at_beats (origin + note:time () - region:start ():beats ())
				print (string.format ("NOTE|%s|%d|%d|%d|%d|%d|%d|%d", track:name (), pos, ticks (note:time ()),
					ticks (note:length ()), note:note (), note:velocity (), note:channel (), at))
			end
		end
	end
end
session, tm = nil, nil
collectgarbage ()
close_session ()
