namespace ClipGen.Server;

/// <summary>
/// <c>data:</c> URLs (RFC 2397) as the API takes images: <c>data:image/png;base64,iVBOR…</c>. A string that starts with
/// <c>data:</c> and has a comma is a data URL; any other string is text.
/// </summary>
static class DataUrl
{
    /// <summary>True when <paramref name="value"/> is written as a data URL (whatever its media type).</summary>
    public static bool IsDataUrl(string value) =>
        value.StartsWith("data:", StringComparison.OrdinalIgnoreCase) && value.AsSpan(5, Math.Min(value.Length - 5, 256)).Contains(',');

    /// <summary>
    /// The bytes of an image data URL; a 400 when it is not base64 of an image media type, or decodes to more than
    /// <paramref name="maxBytes"/>.
    /// </summary>
    public static byte[] DecodeImage(string value, string what, string param, long maxBytes)
    {
        int comma = value.IndexOf(',', StringComparison.Ordinal);
        var header = value.AsSpan(5, comma - 5);
        int semi = header.IndexOf(';');
        var mediaType = (semi < 0 ? header : header[..semi]).Trim().ToString();
        var parameters = semi < 0 ? [] : header[(semi + 1)..].ToString().Split(';', StringSplitOptions.TrimEntries);
        if (!mediaType.StartsWith("image/", StringComparison.OrdinalIgnoreCase))
            throw ApiException.BadRequest($"{what} is a data URL of '{Shorten(mediaType)}', not of an image (image/png, image/jpeg, ...)", param, "invalid_image");
        if (!parameters.Contains("base64", StringComparer.OrdinalIgnoreCase))
            throw ApiException.BadRequest($"{what} is a data URL without ';base64': images must be base64-encoded", param, "invalid_base64");
        var payload = value.AsSpan(comma + 1);
        if ((long)payload.Length / 4 * 3 > maxBytes + 3)
            throw new ApiException(413, $"{what} is an image of more than {maxBytes} bytes", param, "image_too_large");
        var bytes = new byte[payload.Length / 4 * 3 + 3];
        if (!Convert.TryFromBase64Chars(payload, bytes, out int written))
            throw ApiException.BadRequest($"{what} is not valid base64", param, "invalid_base64");
        if (written == 0) throw ApiException.BadRequest($"{what} is an empty image", param, "invalid_image");
        return bytes.AsSpan(0, written).ToArray();
    }

    static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "...";
}
