using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace ClipGen.Server;

/// <summary>A request the server refuses: the status, a one-line reason and, as OpenAI's API does, the parameter at fault and a code.</summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null) : Exception(OneLine(message))
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    /// <summary>An OpenAI error type for the status.</summary>
    public string Type => TypeOf(Status);

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);

    internal static string TypeOf(int status) => status switch
    {
        503 or 429 => "server_overloaded",
        >= 500 => "server_error",
        404 => "not_found_error",
        413 => "request_too_large",
        _ => "invalid_request_error",
    };

    /// <summary>Line breaks and control characters become spaces, so that the reason stays one line.</summary>
    internal static string OneLine(string message)
    {
        var chars = message.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
            if (char.IsControl(chars[i])) chars[i] = ' ';
        return new string(chars);
    }
}

/// <summary>The error body: <c>{"error": {"message", "type", "param", "code"}}</c>, as OpenAI's API answers.</summary>
public sealed record ErrorResponse([property: JsonPropertyName("error")] ErrorBody Error);

/// <summary>The inner object of <see cref="ErrorResponse"/>.</summary>
public sealed record ErrorBody(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

static class ErrorWriter
{
    public static async Task WriteAsync(HttpContext context, int status, string message, string? param = null, string? code = null, int? retryAfterSeconds = null)
    {
        if (context.Response.HasStarted) return;
        context.Response.Clear();
        context.Response.StatusCode = status;
        if (retryAfterSeconds is int seconds) context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.ContentType = "application/json";
        var body = new ErrorResponse(new ErrorBody(ApiException.OneLine(message), ApiException.TypeOf(status), param, code));
        await JsonSerializer.SerializeAsync(context.Response.Body, body, ServerJson.Options, context.RequestAborted).ConfigureAwait(false);
    }
}
