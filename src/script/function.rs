//! FUNCTION LOAD/DELETE/FLUSH/LIST/DUMP/RESTORE/STATS/KILL and FCALL/FCALL_RO. Mirrors `functions.c`
//! and `function_lua.c`.
