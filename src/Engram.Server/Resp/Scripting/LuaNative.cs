using System.Runtime.InteropServices;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// The Lua 5.4 C API that <see cref="LuaSandbox"/> uses, called on liblua54 (the native library of the KeraLua
/// package; its managed wrapper is not used: it takes delegates, and the sandbox needs plain function pointers for
/// the allocator and the hooks). Only raw accesses appear here: nothing the sandbox calls from managed code may run a
/// metamethod or raise a Lua error, because an error unwinds with <c>longjmp</c>, which must never cross a managed frame.
/// </summary>
internal static unsafe partial class LuaNative
{
    private const string Lib = "lua54";

    public const int Ok = 0;
    public const int ErrorRun = 2;
    public const int ErrorMemory = 4;
    public const int MultiReturn = -1;
    public const int MaskCount = 1 << 3;

    /// <summary>The pseudo-index of a C closure's first upvalue (LUA_REGISTRYINDEX - 1).</summary>
    public const int FirstUpvalue = -1_001_000 - 1;

    /// <summary>The pseudo-index of a C closure's n-th upvalue (lua_upvalueindex).</summary>
    public static int Upvalue(int n) => -1_001_000 - n;

    // lua_type
    public const int TypeNil = 0;
    public const int TypeBoolean = 1;
    public const int TypeNumber = 3;
    public const int TypeString = 4;
    public const int TypeTable = 5;
    public const int TypeFunction = 6;

    [LibraryImport(Lib)]
    public static partial nint lua_newstate(delegate* unmanaged<nint, nint, nuint, nuint, nint> alloc, nint ud);

    [LibraryImport(Lib)]
    public static partial void lua_close(nint state);

    [LibraryImport(Lib)]
    public static partial int lua_gettop(nint state);

    [LibraryImport(Lib)]
    public static partial void lua_settop(nint state, int index);

    [LibraryImport(Lib)]
    public static partial int lua_checkstack(nint state, int n);

    [LibraryImport(Lib)]
    public static partial void lua_pushnil(nint state);

    [LibraryImport(Lib)]
    public static partial void lua_pushinteger(nint state, long n);

    [LibraryImport(Lib)]
    public static partial void lua_pushboolean(nint state, int b);

    [LibraryImport(Lib)]
    public static partial void lua_pushnumber(nint state, double n);

    /// <summary>Raw traversal (no metamethods); raises an error only for a key not in the table, which callers never pass.</summary>
    [LibraryImport(Lib)]
    public static partial int lua_next(nint state, int index);

    [LibraryImport(Lib)]
    public static partial int lua_rawequal(nint state, int index1, int index2);

    [LibraryImport(Lib)]
    public static partial nint lua_pushlstring(nint state, byte* s, nuint length);

    [LibraryImport(Lib)]
    public static partial void lua_pushcclosure(nint state, delegate* unmanaged<nint, int> function, int upvalues);

    [LibraryImport(Lib)]
    public static partial void lua_pushvalue(nint state, int index);

    [LibraryImport(Lib)]
    public static partial void lua_createtable(nint state, int arrayCount, int recordCount);

    [LibraryImport(Lib)]
    public static partial void lua_rawseti(nint state, int index, long n);

    [LibraryImport(Lib)]
    public static partial int lua_rawgeti(nint state, int index, long n);

    [LibraryImport(Lib)]
    public static partial int lua_rawget(nint state, int index);

    [LibraryImport(Lib)]
    public static partial void lua_rawset(nint state, int index);

    [LibraryImport(Lib)]
    public static partial void lua_setglobal(nint state, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [LibraryImport(Lib)]
    public static partial int lua_getglobal(nint state, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [LibraryImport(Lib)]
    public static partial void lua_setfield(nint state, int index, [MarshalAs(UnmanagedType.LPUTF8Str)] string key);

    [LibraryImport(Lib)]
    public static partial void lua_rotate(nint state, int index, int n);

    [LibraryImport(Lib)]
    public static partial long lua_tointegerx(nint state, int index, nint isNumber);

    [LibraryImport(Lib)]
    public static partial nint lua_setupvalue(nint state, int function, int n);

    [LibraryImport(Lib)]
    public static partial int lua_type(nint state, int index);

    [LibraryImport(Lib)]
    public static partial int lua_toboolean(nint state, int index);

    [LibraryImport(Lib)]
    public static partial byte* lua_tolstring(nint state, int index, out nuint length);

    [LibraryImport(Lib)]
    public static partial long lua_tointegerx(nint state, int index, out int isNumber);

    [LibraryImport(Lib)]
    public static partial double lua_tonumberx(nint state, int index, out int isNumber);

    [LibraryImport(Lib)]
    public static partial int lua_isinteger(nint state, int index);

    [LibraryImport(Lib)]
    public static partial int luaL_loadbufferx(nint state, byte* buffer, nuint size, [MarshalAs(UnmanagedType.LPUTF8Str)] string name,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string mode);

    [LibraryImport(Lib)]
    public static partial int lua_pcallk(nint state, int arguments, int results, int handler, nint context, nint continuation);

    [LibraryImport(Lib)]
    public static partial void lua_sethook(nint state, nint hook, int mask, int count);

    [LibraryImport(Lib)]
    public static partial int lua_isnumber(nint state, int index);

    [LibraryImport(Lib)]
    public static partial void lua_copy(nint state, int from, int to);

    [LibraryImport(Lib)]
    public static partial int lua_getstack(nint state, int level, byte* debug);

    [LibraryImport(Lib)]
    public static partial int lua_getinfo(nint state, [MarshalAs(UnmanagedType.LPUTF8Str)] string what, byte* debug);

    /// <summary>A plain state with the standard allocator (tests compare the sandbox with the stock library on one).</summary>
    [LibraryImport(Lib)]
    public static partial nint luaL_newstate();

    [LibraryImport(Lib)]
    public static partial void luaL_openlibs(nint state);

    [LibraryImport(Lib)]
    public static partial void luaL_requiref(nint state, [MarshalAs(UnmanagedType.LPUTF8Str)] string module, nint open, int global);

    /// <summary>A C function of the library by name (the libraries' openers, <c>luaL_error</c>).</summary>
    public static nint Export(string name) => NativeLibrary.GetExport(Handle.Value, name);

    private static readonly Lazy<nint> Handle = new(() => NativeLibrary.Load(Lib, typeof(LuaNative).Assembly, null));

    public static void Pop(nint state, int n) => lua_settop(state, -n - 1);

    public static void PushBytes(nint state, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            // A non-null pointer even for the empty string: lua_pushlstring reads nothing then.
            byte empty = 0;
            lua_pushlstring(state, bytes.IsEmpty ? &empty : p, (nuint)bytes.Length);
        }
    }

    /// <summary>Compiles a text chunk and pushes it (or the error message); returns the status.</summary>
    public static int LoadChunk(nint state, ReadOnlySpan<byte> code, string name)
    {
        byte none = 0;
        fixed (byte* p = code)
        {
            return luaL_loadbufferx(state, code.IsEmpty ? &none : p, (nuint)code.Length, name, "t");
        }
    }

    public static void PushString(nint state, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        PushBytes(state, bytes);
    }

    /// <summary>The string (or number, converted in place as Lua does) at <paramref name="index"/>; empty when it is neither.</summary>
    public static ReadOnlySpan<byte> ToBytes(nint state, int index)
    {
        var p = lua_tolstring(state, index, out var length);
        return p is null ? default : new ReadOnlySpan<byte>(p, checked((int)length));
    }

    /// <summary>Pushes t[<paramref name="field"/>] of the table at <paramref name="index"/> without metamethods; returns its type.</summary>
    public static int RawGetField(nint state, int index, string field)
    {
        var absolute = index < 0 ? lua_gettop(state) + index + 1 : index;
        PushString(state, field);
        return lua_rawget(state, absolute);
    }
}
