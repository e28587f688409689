using System.Globalization;
using System.Text.Json;

namespace ClipGen.Checkpoints;

/// <summary>
/// Strict readers for the JSON configs beside checkpoints (open_clip's <c>open_clip_config.json</c>, Hugging Face's
/// <c>config.json</c>): a value of the wrong JSON type or range is an error naming the key and the value, never a silent default.
/// An absent key (or JSON null) is null, for the caller's documented default.
/// </summary>
public static class ConfigValues
{
    /// <summary>A whole number of at least <paramref name="min"/>, or null when absent.</summary>
    public static int? Int(JsonElement parent, string name, string where, int min = 0) =>
        Get(parent, name) is { } v ? IntValue(v, where + "." + name, min) : null;

    /// <summary>A number greater than <paramref name="minExclusive"/>, or null when absent.</summary>
    public static double? Double(JsonElement parent, string name, string where, double minExclusive = double.NegativeInfinity) =>
        Get(parent, name) is { } v ? DoubleValue(v, where + "." + name, minExclusive) : null;

    /// <summary>true or false, or null when absent.</summary>
    public static bool? Bool(JsonElement parent, string name, string where) => Get(parent, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw Wrong(where + "." + name, v, "true or false"),
    };

    /// <summary>A string, or null when absent.</summary>
    public static string? String(JsonElement parent, string name, string where) => Get(parent, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        { } v => throw Wrong(where + "." + name, v, "a string"),
    };

    /// <summary>An object, or null when absent.</summary>
    public static JsonElement? Object(JsonElement parent, string name, string where) => Get(parent, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } v => v,
        { } v => throw Wrong(where + "." + name, v, "an object"),
    };

    /// <summary>An array of numbers, or null when absent.</summary>
    public static double[]? Doubles(JsonElement parent, string name, string where, int count)
    {
        if (Get(parent, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != count || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Number))
            throw Wrong(where + "." + name, v, $"a list of {count} numbers");
        return v.EnumerateArray().Select(x => x.GetDouble()).ToArray();
    }

    /// <summary>A JSON value that must be a whole number of at least <paramref name="min"/>.</summary>
    public static int IntValue(JsonElement v, string at, int min)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n)) throw Wrong(at, v, "a whole number");
        if (n < min) throw new ClipGenException($"{at} is {n}; it must be at least {min}");
        return n;
    }

    /// <summary>A JSON value that must be a finite number greater than <paramref name="minExclusive"/>.</summary>
    public static double DoubleValue(JsonElement v, string at, double minExclusive)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || !double.IsFinite(d)) throw Wrong(at, v, "a number");
        if (d <= minExclusive) throw new ClipGenException($"{at} is {d.ToString("R", CultureInfo.InvariantCulture)}; it must be greater than {minExclusive.ToString("R", CultureInfo.InvariantCulture)}");
        return d;
    }

    /// <summary>The raw value of a key, or null when absent or JSON null.</summary>
    public static JsonElement? Get(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    static ClipGenException Wrong(string at, JsonElement v, string expected)
    {
        var raw = v.GetRawText();
        if (raw.Length > 60) raw = raw[..57] + "...";
        return new ClipGenException($"{at} must be {expected}, not {raw}");
    }
}
