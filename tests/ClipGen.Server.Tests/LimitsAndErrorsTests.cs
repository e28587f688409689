using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace ClipGen.Server.Tests;

/// <summary>Refusals (one-line OpenAI-style errors, never a stack trace), the full queue, the body cap, metrics and shutdown.</summary>
public partial class LimitsAndErrorsTests(IndexedServerFixture fixture) : IClassFixture<IndexedServerFixture>
{
    RunningServer S => fixture.Running;

    static async Task<JsonElement> Error(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(text);
        var error = doc.RootElement.GetProperty("error").Clone();
        var message = error.GetProperty("message").GetString()!;
        Assert.False(string.IsNullOrWhiteSpace(message));
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain("   at ", text);
        Assert.True(error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _));
        return error;
    }

    static string Png => Fixtures.DataUrl(Fixtures.RealImages[0]);

    public static TheoryData<string, string, string, string?> BadRequests => new()
    {
        // path, body, a word of the message, param
        { "/v1/embeddings", "{\"model\": \"tiny-vit\", \"input\": [\"a\", ", "invalid JSON", null },
        { "/v1/embeddings", "not json at all", "invalid JSON", null },
        { "/v1/embeddings", "{\"input\": 5}", "not a string", "input" },
        { "/v1/embeddings", "{\"input\": [1, 2, 3]}", "token arrays", "input[0]" },
        { "/v1/embeddings", "{\"input\": []}", "empty", "input" },
        { "/v1/embeddings", "{\"model\": \"text-embedding-3-small\", \"input\": \"a\"}", "unknown model", "model" },
        { "/v1/embeddings", "{\"input\": \"a\", \"encoding_format\": \"int8\"}", "encoding_format", "encoding_format" },
        { "/v1/embeddings", "{\"input\": \"a\", \"dimensions\": 16}", "32-dimensional", "dimensions" },
        { "/v1/embeddings", "{\"input\": \"data:image/png;base64,@@@notbase64@@@\"}", "not valid base64", "input" },
        { "/v1/embeddings", "{\"input\": \"data:text/plain;base64,aGVsbG8=\"}", "not of an image", "input" },
        { "/v1/embeddings", "{\"input\": [\"ok\", \"data:image/png;base64,aGVsbG8gd29ybGQ=\"]}", "could not be decoded", "input[1]" },
        { "/v1/embeddings", "{\"input\": \"data:image/png,rawbytes\"}", "base64", "input" },
        { "/v1/classify", "{\"images\": [], \"labels\": [\"a\"]}", "empty", "images" },
        { "/v1/classify", "{\"images\": [\"a cat\"], \"labels\": [\"a\"]}", "not a data URL", "images[0]" },
        { "/v1/classify", "{\"images\": [\"PNG\"], \"labels\": [\"a\", \"a\"]}", "twice", "labels" },
        { "/v1/classify", "{\"images\": [\"PNG\"]}", "labels is missing", "labels" },
        { "/v1/classify", "{\"images\": [\"PNG\"], \"labels\": [\"a\"], \"model\": \"ViT-B-32\"}", "unknown model", "model" },
        { "/v1/search", "{\"query\": \"a cat\", \"k\": 0}", "k must be", "k" },
        { "/v1/search", "{\"query\": \"a cat\", \"k\": 1000001}", "k must be", "k" },
        { "/v1/search", "{\"query\": \"a cat\", \"k\": 2.5}", "wrong type", "k" },
        { "/v1/search", "{\"query\": \"a cat\", \"k\": \"ten\"}", "wrong type", "k" },
        { "/v1/search", "{\"k\": 3}", "exactly one", "query" },
        { "/v1/search", "{\"query\": \"a\", \"vector\": [1]}", "exactly one", "vector" },
        { "/v1/search", "{\"vector\": [1, 2, 3]}", "3 values", "vector" },
        { "/v1/search", "{\"query\": \"data:application/pdf;base64,JVBERi0=\"}", "not of an image", "query" },
        { "/v1/search", "null", "JSON null", null },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_requests_get_400_with_a_one_line_reason(string path, string body, string reason, string? param)
    {
        var error = await Error(await S.PostRaw(path, body.Replace("\"PNG\"", "\"" + Png + "\"", StringComparison.Ordinal)), HttpStatusCode.BadRequest);
        Assert.Contains(reason, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        if (param is not null) Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Too_many_inputs_get_400()
    {
        var inputs = Enumerable.Repeat("a photo", 65).ToArray();
        var error = await Error(await S.PostJson("/v1/embeddings", new { input = inputs }), HttpStatusCode.BadRequest);
        Assert.Equal("too_many_inputs", error.GetProperty("code").GetString());
        Assert.Contains("64", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        error = await Error(await S.PostJson("/v1/classify", new { images = Enumerable.Repeat("x", 65), labels = new[] { "a" } }), HttpStatusCode.BadRequest);
        Assert.Equal("too_many_inputs", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Unknown_paths_are_404_and_wrong_methods_are_refused()
    {
        await Error(await S.Client.GetAsync("/v1/nothing"), HttpStatusCode.NotFound);
        Assert.Equal("method_not_allowed", (await Error(await S.Client.GetAsync("/v1/embeddings"), HttpStatusCode.MethodNotAllowed)).GetProperty("code").GetString());
        // curl -d sends application/x-www-form-urlencoded unless told otherwise.
        var form = await S.Client.PostAsync("/v1/embeddings", new StringContent("{\"input\": \"a\"}", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Contains("Content-Type: application/json", (await Error(form, HttpStatusCode.UnsupportedMediaType)).GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_queue_gets_503_with_retry_after_and_held_requests_still_finish()
    {
        await using var s = await RunningServer.StartAsync(RunningServer.TinyVit() with { QueueCapacity = 1, MaxBatch = 1, MaxBodyBytes = 4096 });
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        s.Server.Batcher.Gate = hold.Task;
        try
        {
            await QueueFull(s, hold);
        }
        finally
        {
            hold.TrySetResult(); // a failed assertion must not leave the worker held (shutdown would wait for it)
        }
    }

    static async Task QueueFull(RunningServer s, TaskCompletionSource hold)
    {
        var first = s.PostJson("/v1/embeddings", new { input = "a photo of a cat" });
        // The worker waits at the gate with the first request still in the queue (capacity 1): the queue is full.
        await WaitUntil(() => s.Server.Batcher.QueueDepth == 1 || first.IsCompleted);
        Assert.False(first.IsCompleted, first.IsCompleted ? await (await first).Content.ReadAsStringAsync() : "");
        var refused = await s.PostJson("/v1/embeddings", new { input = "a photo of a dog" });
        var error = await Error(refused, HttpStatusCode.ServiceUnavailable);
        Assert.Equal("queue_full", error.GetProperty("code").GetString());
        Assert.Equal("1", Assert.Single(refused.Headers.GetValues("Retry-After")));

        // The body cap: 4096 bytes here.
        var tooBig = await s.PostJson("/v1/embeddings", new { input = new string('a', 5000) });
        Assert.Contains("4096", (await Error(tooBig, HttpStatusCode.RequestEntityTooLarge)).GetProperty("message").GetString(), StringComparison.Ordinal);

        hold.SetResult();
        var answered = await first;
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        var metrics = await s.Client.GetStringAsync("/metrics");
        Assert.Contains("clipgen_queue_rejected_total 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("clipgen_http_requests_total{endpoint=\"/v1/embeddings\",method=\"POST\",status=\"503\"} 1\n", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shutdown_finishes_the_requests_in_flight()
    {
        var s = await RunningServer.StartAsync(RunningServer.TinyVit());
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        s.Server.Batcher.Gate = hold.Task;
        var inFlight = s.PostJson("/v1/embeddings", new { input = new[] { "a photo of a cat", "a diagram" } });
        await WaitUntil(() => s.Server.Batcher.QueueDepth == 1);
        var stopping = s.Server.StopAsync();
        hold.SetResult();
        var response = await inFlight;
        await stopping;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(2, doc.RootElement.GetProperty("data").GetArrayLength());
        await s.DisposeAsync();
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_and_count_requests()
    {
        await using var s = await RunningServer.StartAsync(RunningServer.TinyVit() with { MaxBatch = 8 });
        for (int i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.OK, (await s.PostJson("/v1/embeddings", new { input = new[] { "a", "b" } })).StatusCode);
        for (int i = 0; i < 2; i++)
            Assert.Equal(HttpStatusCode.BadRequest, (await s.PostRaw("/v1/embeddings", "{")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Client.GetAsync("/healthz")).StatusCode);

        var response = await s.Client.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var samples = ParsePrometheus(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, samples[("clipgen_http_requests_total", "endpoint=/v1/embeddings,method=POST,status=200")]);
        Assert.Equal(2, samples[("clipgen_http_requests_total", "endpoint=/v1/embeddings,method=POST,status=400")]);
        Assert.Equal(1, samples[("clipgen_http_requests_total", "endpoint=/healthz,method=GET,status=200")]);
        Assert.Equal(5, samples[("clipgen_http_request_duration_seconds_count", "endpoint=/v1/embeddings")]);
        Assert.Equal(5, samples[("clipgen_http_request_duration_seconds_bucket", "endpoint=/v1/embeddings,le=+Inf")]);
        // Three batches of two texts each (the requests came one after another).
        Assert.Equal(3, samples[("clipgen_batch_size_count", "")]);
        Assert.Equal(6, samples[("clipgen_batch_size_sum", "")]);
        Assert.Equal(0, samples[("clipgen_batch_size_bucket", "le=1")]);
        Assert.Equal(3, samples[("clipgen_batch_size_bucket", "le=2")]);
        Assert.Equal(0, samples[("clipgen_queue_depth", "")]);
    }

    /// <summary>Parses the text exposition format strictly: HELP/TYPE comments, then "name{labels} value" samples; buckets cumulative.</summary>
    static Dictionary<(string Name, string Labels), double> ParsePrometheus(string text)
    {
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var samples = new Dictionary<(string, string), double>();
        var types = new Dictionary<string, string>();
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            if (line.StartsWith('#'))
            {
                var m = CommentLine().Match(line);
                Assert.True(m.Success, $"bad comment line: {line}");
                if (m.Groups[1].Value == "TYPE") types[m.Groups[2].Value] = m.Groups[3].Value;
                continue;
            }
            var s = SampleLine().Match(line);
            Assert.True(s.Success, $"bad sample line: {line}");
            var name = s.Groups[1].Value;
            var labels = string.Join(",", LabelPair().Matches(s.Groups[2].Value).Select(p => $"{p.Groups[1].Value}={p.Groups[2].Value}"));
            var family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.True(types.ContainsKey(name) || types.ContainsKey(family), $"{name} has no TYPE line before it");
            double value = s.Groups[3].Value == "+Inf" ? double.PositiveInfinity : double.Parse(s.Groups[3].Value, CultureInfo.InvariantCulture);
            Assert.True(samples.TryAdd((name, labels), value), $"sample twice: {line}");
        }
        return samples;
    }

    [GeneratedRegex(@"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")]
    private static partial Regex CommentLine();

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"",?)*)\})? (\S+)$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();

    /// <summary>Polls a condition (the server's own state), bounded by a generous count of polls rather than a wall-clock assertion.</summary>
    static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 6000 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition(), "the server never reached the expected state");
    }
}
