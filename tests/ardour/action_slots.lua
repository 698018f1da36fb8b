-- Test helper: Ardour's editor action slots, as Ardour itself keeps and runs them (gtk2_ardour/luainstance.cc).
--   write OUT [slot script preset]...  the state Ardour saves in `ui_scripts` (before base64) for scripts set
--                                     in those slots: the script text and its factory, dumped to bytecode
--   run STATE SLOT DIR NAME           restore that state as Ardour does (only the dumped factory survives),
--                                     run the slot's action on a saved session, headless, and save it;
--                                     Ardour's dialogs print what they show
local mode = arg[1]

local function basic (o) return type (o) == "number" and tostring (o) or string.format ("%q", o) end
-- Ardour's own serializer (LuaInstance::init), so Ardour reads the result back as its own.
local function serialize (name, value)
	if type (value) ~= "table" then return name .. " = " .. basic (value) .. " " end
	local rv = name .. " = {} "
	for k, v in pairs (value) do rv = rv .. serialize (string.format ("%s[%s]", name, basic (k)), v) .. " " end
	return rv
end

local function read (path)
	local file = assert (io.open (path, "rb"))
	local text = file:read ("a")
	file:close ()
	return text
end

if mode == "write" then
	local scripts = {}
	for i = 3, #arg, 3 do
		local slot, path, preset = tonumber (arg[i]), arg[i + 1], arg[i + 2]
		local text = read (path)
		-- LuaScripting::get_factory_bytecode: run the script in a sandbox, keep only `factory`, dumped.
		local sandbox = setmetatable ({ ardour = function () end }, { __index = _G })
		assert (load (text, path, "t", sandbox)) ()
		scripts[slot] = { n = "midibridge " .. slot, s = text, f = string.dump (sandbox.factory, true), c = "",
			a = { preset = preset, ["x-script-origin"] = path } }
	end
	local file = assert (io.open (arg[2], "wb"))
	file:write (serialize ("scripts", scripts))
	file:close ()
	print ("SLOTS OK")
elseif mode == "run" then
	local slot, dir, name = tonumber (arg[3]), arg[4], arg[5]
	local session = assert (load_session (dir, name), "load_session failed")
	-- What a GUI action sees besides Ardour's libraries: the session, the editor and its dialogs.
	local env = setmetatable ({
		Session = session,
		Editor = { redo = function (_, n) print ("EDITOR redo " .. n) end },
		LuaDialog = {
			MessageType = { Info = 0, Warning = 1, Error = 2 }, ButtonType = { Close = 0 },
			Message = function (title, text) return { run = function () print ("DIALOG " .. title .. "\n" .. text) end } end,
			ProgressWindow = function (title)
				return { progress = function (_, fraction, text) print ("PROGRESS " .. text) end, done = function () end }
			end,
		},
	}, { __index = _G })
	-- LuaInstance's restore and addinternal: the saved factory is all there is.
	load (read (arg[2])) ()
	local saved = scripts[slot]
	scripts = nil
	local action = load (string.dump (load (saved.f), true), nil, nil, env) (saved.a)
	action ()
	assert (session:save_state ("") == 0)
	action, env, session = nil, nil, nil
	collectgarbage ()
	close_session ()
	print ("RAN OK")
end
