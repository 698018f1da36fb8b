-- Test fixture: a new Ardour session whose audio tracks play regions of existing audio files.
-- arguments: dir name rate bpm, then per track: name file frames channels position_s trim_s length_s
-- Headless Ardour 7.3 has no import: bounce an empty range to get a source and a region, place and trim
-- the region, then point the sources at the files in the saved XML and reload (what FINDINGS found).

local dir, name, rate, bpm = arg[1], arg[2], tonumber (arg[3]), tonumber (arg[4])
local wanted = {}
for i = 5, #arg, 7 do
	table.insert (wanted, { track = arg[i], file = arg[i + 1], frames = tonumber (arg[i + 2]),
		channels = tonumber (arg[i + 3]), pos = tonumber (arg[i + 4]), trim = tonumber (arg[i + 5]), len = tonumber (arg[i + 6]) })
end

local session = assert (create_session (dir, name, rate), "create_session failed")
local tm = Temporal.TempoMap.fetch_writable ()
tm:set_tempo (Temporal.Tempo (bpm, bpm, 4), Temporal.timepos_t (0))
tm:set_meter (Temporal.Meter (4, 4), Temporal.timepos_t (0))
Temporal.TempoMap.update (tm)

local sources = {}  -- source id -> { file, channel }
for _, w in ipairs (wanted) do
	local list = session:new_audio_track (w.channels, 2, nil, 1, w.track, ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
	local track
	for t in list:iter () do track = t end
	local bounced = track:bounce_range (0, w.frames, ARDOUR.InterThreadInfo (), track:main_outs (), false, w.track .. " take")
	for c = 0, bounced:to_audioregion ():n_channels () - 1 do
		sources[bounced:source (c):to_stateful ():id ():to_s ()] = { file = w.file, channel = c }
	end
	local playlist = track:playlist ()
	playlist:add_region (bounced, Temporal.timepos_t (math.floor (w.pos * rate + 0.5)), 1, false, 0, 0, false)
	local region
	for r in playlist:region_list ():iter () do region = r end
	region:set_length (Temporal.timecnt_t (math.floor (w.len * rate + 0.5)))  -- length first: then the start may move
	region:set_start (Temporal.timepos_t (math.floor (w.trim * rate + 0.5)))
	list, track, bounced, playlist, region = nil, nil, nil, nil, nil
end
assert (session:save_state ("") == 0)
session = nil
collectgarbage ()
close_session ()

local path = dir .. "/" .. name .. ".ardour"
local file = assert (io.open (path, "r"))
local xml = file:read ("a")
file:close ()
for id, source in pairs (sources) do
	xml = xml:gsub ('<Source [^>]-id="' .. id .. '"[^>]*>', function (node)
		node = node:gsub ('name="[^"]*"', 'name="' .. source.file .. '"', 1)
		return (node:gsub ('channel="%d+"', 'channel="' .. source.channel .. '"', 1))
	end)
end
file = assert (io.open (path, "w"))
file:write (xml)
file:close ()

session = assert (load_session (dir, name), "reload failed")
assert (session:save_state ("") == 0)
session = nil
collectgarbage ()
close_session ()
print ("SESSION OK")
