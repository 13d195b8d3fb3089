using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using static Engram.Server.Resp.Scripting.LuaNative;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// cjson for scripts (Redis ships lua-cjson; scripts over JSON values use it): <c>cjson.decode</c> and
/// <c>cjson.encode</c> as lua-cjson behaves by default: JSON null is <c>cjson.null</c>, an empty table encodes as
/// <c>{}</c>, a table whose keys are 1..n as an array, nesting deeper than 1000 is an error. Like every callback,
/// these never raise a Lua error: they return <c>nil, message</c> and the prelude's wrapper raises it.
/// </summary>
internal static unsafe partial class LuaSandbox
{
    private const int MaxJsonDepth = 1000;

    private static readonly JsonWriterOptions JsonOutput = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true, MaxDepth = MaxJsonDepth + 8 };

    [UnmanagedCallersOnly]
    private static int JsonDecode(nint state)
    {
        using var unlimited = new Unlimited();
        var top = lua_gettop(state);
        try
        {
            var reader = new Utf8JsonReader(ToBytes(state, 1), new JsonReaderOptions { MaxDepth = MaxJsonDepth });
            if (!reader.Read() || !PushJson(state, ref reader, 0))
            {
                return DecodeFailed(state, top, "Expected value but found T_END at character 1");
            }
            if (reader.Read())
            {
                return DecodeFailed(state, top, $"Expected the end but found more at character {reader.TokenStartIndex + 1}");
            }
            return 1;
        }
        catch (JsonException ex)
        {
            return DecodeFailed(state, top, "Invalid JSON: " + ex.Message);
        }
        catch (Exception ex)
        {
            return DecodeFailed(state, top, "cjson.decode failed: " + ex.Message);
        }
    }

    private static int DecodeFailed(nint state, int top, string message)
    {
        lua_settop(state, top);
        lua_pushnil(state);
        PushString(state, message);
        return 2;
    }

    /// <summary>Pushes the value at the reader's token (and reads past it); false when the stack cannot grow.</summary>
    private static bool PushJson(nint state, ref Utf8JsonReader reader, int depth)
    {
        if (depth > MaxJsonDepth || lua_checkstack(state, 4) == 0)
        {
            return false;
        }
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                lua_createtable(state, 0, 0);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    PushString(state, reader.GetString()!);
                    reader.Read();
                    if (!PushJson(state, ref reader, depth + 1))
                    {
                        return false;
                    }
                    lua_rawset(state, -3);
                }
                return true;
            case JsonTokenType.StartArray:
                lua_createtable(state, 0, 0);
                var index = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (!PushJson(state, ref reader, depth + 1))
                    {
                        return false;
                    }
                    lua_rawseti(state, -2, ++index);
                }
                return true;
            case JsonTokenType.String:
                if (reader.ValueIsEscaped || reader.HasValueSequence)
                {
                    PushString(state, reader.GetString()!);
                }
                else
                {
                    PushBytes(state, reader.ValueSpan);
                }
                return true;
            case JsonTokenType.Number:
                if (reader.TryGetInt64(out var integer))
                {
                    lua_pushinteger(state, integer);
                }
                else
                {
                    lua_pushnumber(state, reader.GetDouble());
                }
                return true;
            case JsonTokenType.True or JsonTokenType.False:
                lua_pushboolean(state, reader.TokenType == JsonTokenType.True ? 1 : 0);
                return true;
            case JsonTokenType.Null:
                lua_pushvalue(state, FirstUpvalue);
                return true;
            default:
                return false;
        }
    }

    [UnmanagedCallersOnly]
    private static int JsonEncode(nint state)
    {
        using var unlimited = new Unlimited();
        var top = lua_gettop(state);
        try
        {
            if (top == 0)
            {
                lua_pushnil(state);
            }
            var output = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(output, JsonOutput))
            {
                if (WriteJson(state, 1, writer, output, 0) is { } failure)
                {
                    return DecodeFailed(state, top, failure);
                }
            }
            lua_settop(state, top);
            PushBytes(state, output.WrittenSpan);
            return 1;
        }
        catch (Exception ex)
        {
            return DecodeFailed(state, top, "cjson.encode failed: " + ex.Message);
        }
    }

    /// <summary>Writes the value at <paramref name="index"/> (an absolute index); returns lua-cjson's error text when it cannot be encoded.</summary>
    private static string? WriteJson(nint state, int index, Utf8JsonWriter writer, ArrayBufferWriter<byte> output, int depth)
    {
        if (depth > MaxJsonDepth || lua_checkstack(state, 4) == 0)
        {
            return $"Cannot serialise, excessive nesting ({depth})";
        }
        if (output.WrittenCount + writer.BytesPending > RespConnection.MaxTransactionBytes)
        {
            return $"Cannot serialise: the JSON is over {RespConnection.MaxTransactionBytes / (1024 * 1024)} MB";
        }
        switch (lua_type(state, index))
        {
            case TypeNil:
                writer.WriteNullValue();
                return null;
            case TypeBoolean:
                writer.WriteBooleanValue(lua_toboolean(state, index) != 0);
                return null;
            case TypeNumber when lua_isinteger(state, index) != 0:
                writer.WriteNumberValue(lua_tointegerx(state, index, out _));
                return null;
            case TypeNumber:
                var number = lua_tonumberx(state, index, out _);
                if (!double.IsFinite(number))
                {
                    return "Cannot serialise number: must not be NaN or Infinity";
                }
                writer.WriteNumberValue(number);
                return null;
            case TypeString:
                var bytes = ToBytes(state, index);
                if (!System.Text.Unicode.Utf8.IsValid(bytes))
                {
                    return "Cannot serialise string: not valid UTF-8";
                }
                writer.WriteStringValue(bytes);
                return null;
            case TypeTable:
                if (lua_rawequal(state, index, FirstUpvalue) != 0)
                {
                    writer.WriteNullValue();
                    return null;
                }
                return WriteTable(state, index, writer, output, depth);
            default:
                return "Cannot serialise " + TypeName(lua_type(state, index)) + ": type not supported";
        }
    }

    private static string? WriteTable(nint state, int index, Utf8JsonWriter writer, ArrayBufferWriter<byte> output, int depth)
    {
        // An array when every key is a positive integer (lua-cjson); its length is the largest key, holes are null.
        long largest = 0;
        long count = 0;
        var array = true;
        lua_pushnil(state);
        while (lua_next(state, index) != 0)
        {
            count++;
            Pop(state, 1);
            if (array && lua_type(state, -1) == TypeNumber && lua_isinteger(state, -1) != 0 && lua_tointegerx(state, -1, out _) is > 0 and var key)
            {
                largest = Math.Max(largest, key);
            }
            else
            {
                array = false;
            }
        }
        if (array && count > 0)
        {
            if (largest > Math.Max(10, count * 2))
            {
                return "Cannot serialise table: excessively sparse array";
            }
            writer.WriteStartArray();
            for (long i = 1; i <= largest; i++)
            {
                lua_rawgeti(state, index, i);
                var failure = WriteJson(state, lua_gettop(state), writer, output, depth + 1);
                Pop(state, 1);
                if (failure is not null)
                {
                    return failure;
                }
            }
            writer.WriteEndArray();
            return null;
        }
        writer.WriteStartObject();
        lua_pushnil(state);
        while (lua_next(state, index) != 0)
        {
            var keyType = lua_type(state, -2);
            if (keyType is not (TypeString or TypeNumber))
            {
                Pop(state, 2);
                return "Cannot serialise " + TypeName(keyType) + ": table key must be a number or string";
            }
            // A number key is written as its text; lua_tolstring would turn the key itself into a string and break
            // lua_next, so a copy of it is converted.
            lua_pushvalue(state, -2);
            var name = ToBytes(state, -1).ToArray();
            Pop(state, 1);
            if (!System.Text.Unicode.Utf8.IsValid(name))
            {
                Pop(state, 2);
                return "Cannot serialise string: not valid UTF-8";
            }
            writer.WritePropertyName(name);
            var failure = WriteJson(state, lua_gettop(state), writer, output, depth + 1);
            Pop(state, 1);
            if (failure is not null)
            {
                Pop(state, 1);
                return failure;
            }
        }
        writer.WriteEndObject();
        return null;
    }

    private static string TypeName(int type) => type switch
    {
        TypeNil => "nil",
        TypeBoolean => "boolean",
        TypeNumber => "number",
        TypeString => "string",
        TypeTable => "table",
        TypeFunction => "function",
        _ => "userdata",
    };
}
