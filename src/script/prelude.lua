-- The sandbox and the `redis` API of every scripting VM (see vm.rs). Runs once per VM, on the
-- real globals table, before the globals are replaced by a read-only proxy. Its chunk name is
-- "=[redis]": the error handler skips its frames, so that errors point at the user's line.
local internal, G, log, sha1hex, cmd_exists = ...
local dbg = debug
debug = nil
local error, type, tostring, tonumber, select, rawget, rawset, setmetatable, xpcall, pcall, next =
    error, type, tostring, tonumber, select, rawget, rawset, setmetatable, xpcall, pcall, next
local ssub, sfind, sgsub, concat = string.sub, string.find, string.gsub, table.concat

-- Redis 7.0's pcall error handler (__redis__err__handler): the error as a table with the source
-- and line of the user code that raised it.
local function handler(err)
  local lvl = 2
  local i = dbg.getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.source == '=[redis]') do
    lvl = lvl + 1
    i = dbg.getinfo(lvl, 'nSl')
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- luaPushErrorBuff: "-CODE msg" or "msg" as the error table {err = "CODE msg"}.
local function error_table(s)
  local code, msg
  if ssub(s, 1, 1) == '-' then
    local sp = sfind(s, ' ', 1, true)
    if sp then
      code, msg = ssub(s, 2, sp - 1), ssub(s, sp + 1)
    else
      code, msg = 'ERR', ssub(s, 2)
    end
  else
    code, msg = 'ERR', s
  end
  msg = sgsub(sgsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end
internal.error_table = error_table

local resp = 2
local redis = {}

-- redis.call and redis.pcall are C functions (run.rs `redis_call`, `redis_pcall`, set by vm.rs).

redis.setresp = function(...)
  if internal.call == nil then
    error(error_table('redis.setresp can only be called inside a script invocation'))
  end
  if select('#', ...) ~= 1 then error(error_table('redis.setresp() requires one argument.')) end
  local v = tonumber((...)) or 0
  v = v - v % 1
  if v ~= 2 and v ~= 3 then error(error_table('RESP version must be 2 or 3.')) end
  resp = v
  internal.set_resp(v)
end

redis.log = function(...)
  local argc = select('#', ...)
  if argc < 2 then error(error_table('redis.log() requires two arguments or more.')) end
  local level = tonumber((...))
  if level == nil then error(error_table('First argument must be a number (log level).')) end
  level = level - level % 1
  if level < 0 or level > 3 then error(error_table('Invalid debug level.')) end
  local parts = {}
  for j = 2, argc do
    local a = select(j, ...)
    local t = type(a)
    if t == 'string' or t == 'number' then parts[#parts + 1] = tostring(a) end
  end
  log(level, concat(parts, ' '))
end

redis.sha1hex = function(...)
  if select('#', ...) ~= 1 then error(error_table('wrong number of arguments')) end
  local s = ...
  local t = type(s)
  if t == 'number' then s = tostring(s) elseif t ~= 'string' then s = '' end
  return sha1hex(s)
end

redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  -- Redis reads the text as a C string: up to a NUL.
  local nul = sfind(e, '\0', 1, true)
  if nul then e = ssub(e, 1, nul - 1) end
  if ssub(e, 1, 1) ~= '-' then e = '-' .. e end
  return error_table(e)
end

redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  return {ok = s}
end

-- Effects replication is the only mode (Redis 7.0); set_repl is accepted, but every write is
-- logged: the AOF must replay to what memory holds.
redis.set_repl = function(...)
  if internal.call == nil then
    error(error_table('redis.set_repl can only be called inside a script invocation'))
  end
  if select('#', ...) ~= 1 then error(error_table('redis.set_repl() requires two arguments.')) end
  local f = tonumber((...)) or 0
  if f ~= 0 and f ~= 1 and f ~= 2 and f ~= 3 then
    error(error_table('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'))
  end
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
  if internal.call == nil then
    error(error_table('redis.acl_check_cmd can only be called inside a script invocation'))
  end
  if select('#', ...) < 1 then
    error(error_table('Please specify at least one argument for this redis lib call'))
  end
  -- luaArgsToRedisArgv first: every argument must be a string or a number.
  local n, args = select('#', ...), {...}
  for i = 1, n do
    local t = type(args[i])
    if t ~= 'string' and t ~= 'number' then
      error(error_table('Lua redis lib command arguments must be strings or integers'))
    end
  end
  if not cmd_exists(tostring(args[1]), n > 1 and tostring(args[2]) or nil) then
    error(error_table('Invalid command passed to redis.acl_check_cmd()'))
  end
  return true
end

redis.REDIS_VERSION_NUM = internal.version_num
redis.REDIS_VERSION = internal.version
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- Redis's pcall: an error table raised by redis.call is returned as its message.
local function pcall_result(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then return false, m end
  end
  return false, e
end
G.pcall = function(...) return pcall_result(pcall(...)) end

-- No precompiled chunks: bytecode is not verified by Lua 5.1 and could crash the VM.
local lua_loadstring = loadstring
G.loadstring = function(s, name)
  if type(s) == 'string' and ssub(s, 1, 1) == '\27' then return nil, 'binary chunks are not allowed' end
  return lua_loadstring(s, name)
end
G.load = function(f, name)
  local parts = {}
  while true do
    local p = f()
    if p == nil or p == '' then break end
    parts[#parts + 1] = p
  end
  return G.loadstring(concat(parts), name)
end

-- Not in Redis's sandbox.
G.dofile, G.loadfile, G.print, G.getfenv, G.setfenv, G.newproxy, G.module, G.require =
    nil, nil, nil, nil, nil, nil, nil, nil
G.os, G.io, G.package = nil, nil, nil

G.redis = redis
internal.redis = redis

-- Read-only tables: a proxy whose reads fall through to the table and whose writes fail as
-- Redis's read-only tables do.
local readonly = setmetatable({}, {__mode = 'k'})
local function ro_error() error('Attempt to modify a readonly table', 2) end
local function protect(t)
  local p = setmetatable({}, {__index = t, __newindex = ro_error, __metatable = false})
  readonly[p] = true
  return p
end
internal.protect = protect
G.rawset = function(t, k, v)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end

-- The run of one script (`eval`: KEYS and ARGV are the globals it sees) or function (called with
-- `keys` and `args`), with `redis.call`'s bridge (`internal.bridge`, vm.rs) reachable only
-- meanwhile. Returns the RESP version the script chose and xpcall's results.
-- EVAL runs do what `run` does below in C (`run::raw_entry`), with this handler.
internal.handler = handler
internal.run = function(f, keys, args, eval)
  resp = 2
  internal.call = internal.bridge
  local ok, r
  if eval then
    rawset(G, 'KEYS', keys)
    rawset(G, 'ARGV', args)
    ok, r = xpcall(f, handler)
    rawset(G, 'KEYS', nil)
    rawset(G, 'ARGV', nil)
  else
    ok, r = xpcall(function() return f(keys, args) end, handler)
  end
  internal.call = nil
  return resp, ok, r
end

-- Seal the globals: library tables become read-only proxies, missing globals raise Redis's
-- error, and the globals table itself is a read-only proxy (installed by vm.rs).
-- FUNCTION LOAD: library code runs with only the library API visible (redis.register_function,
-- redis.log, the constants); the functions it registers run later with the full globals. Both
-- see the globals through `fenv`, whose fallback is switched for the load.
local function missing(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local registered = nil
local flag_names = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true,
  ['no-cluster'] = true, ['allow-cross-slot-keys'] = true}
local slower = string.lower
local function strlike(v) local t = type(v) return t == 'string' or t == 'number' end
local function register_function(...)
  if registered == nil then
    error(error_table('redis.register_function can only be called on FUNCTION LOAD command'))
  end
  local argc = select('#', ...)
  if argc < 1 or argc > 2 then error(error_table('wrong number of arguments to redis.register_function')) end
  local name, desc, cb, flags
  if argc == 1 then
    local t = ...
    if type(t) ~= 'table' then
      error(error_table('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).'))
    end
    for k, v in next, t do
      if not strlike(k) then error(error_table('named argument key given to redis.register_function is not a string')) end
      local lk = slower(tostring(k))
      if lk == 'function_name' then
        if not strlike(v) then error(error_table('function_name argument given to redis.register_function must be a string')) end
        name = tostring(v)
      elseif lk == 'description' then
        if not strlike(v) then error(error_table('description argument given to redis.register_function must be a string')) end
        desc = tostring(v)
      elseif lk == 'callback' then
        if type(v) ~= 'function' then error(error_table('callback argument given to redis.register_function must be a function')) end
        cb = v
      elseif lk == 'flags' then
        if type(v) ~= 'table' then
          error(error_table('flags argument to redis.register_function must be a table representing function flags'))
        end
        flags = {}
        local j = 1
        while true do
          local f = v[j]
          if f == nil then break end
          if not strlike(f) or not flag_names[slower(tostring(f))] then error(error_table('unknown flag given')) end
          flags[#flags + 1] = slower(tostring(f))
          j = j + 1
        end
      else
        error(error_table('unknown argument given to redis.register_function'))
      end
    end
    if name == nil then error(error_table('redis.register_function must get a function name argument')) end
    if cb == nil then error(error_table('redis.register_function must get a callback argument')) end
  else
    local n, f = ...
    if not strlike(n) then error(error_table('first argument to redis.register_function must be a string')) end
    if type(f) ~= 'function' then error(error_table('second argument to redis.register_function must be a function')) end
    name, cb = tostring(n), f
  end
  if not sfind(name, '^[%w_]+$') then
    error(error_table('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long'))
  end
  if registered[name] then error(error_table('Function already exists in the library')) end
  registered[name] = true
  registered[#registered + 1] = {name = name, desc = desc, flags = flags or {}, callback = cb}
end
local load_redis = setmetatable({
  register_function = register_function, log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = internal.version, REDIS_VERSION_NUM = internal.version_num,
}, {__index = missing})
local load_api = setmetatable({}, {__index = missing})
local fmt = {__index = G, __newindex = ro_error, __metatable = false}
local fenv = setmetatable({}, fmt)
readonly[fenv] = true
internal.fenv = fenv
-- Run a library's main chunk: ok, the error, and the functions it registered.
internal.load = function(f)
  registered = {}
  fmt.__index = load_api
  local ok, e = pcall(f)
  fmt.__index = G
  local r = registered
  registered = nil
  return ok, e, r
end

internal.seal = function()
  for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'redis', 'cjson', 'cmsgpack', 'bit', 'struct'}) do
    local t = rawget(G, name)
    if type(t) == 'table' then rawset(G, name, protect(t)) end
  end
  setmetatable(G, {__index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end, __metatable = false})
  rawset(load_api, 'redis', protect(load_redis))
  local proxy = protect(G)
  rawset(G, '_G', proxy)
  return proxy
end
