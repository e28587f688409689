using System.Diagnostics;
using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Indexing;
using ClipGen.Modeling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClipGen.Server;

/// <summary>
/// <c>clipgen serve</c>: one CLIP model (and optionally an embedding index) behind an HTTP API in OpenAI's embeddings shape,
/// with zero-shot classification, search, thumbnails, a search page, Prometheus metrics and an OpenAPI document.
/// Concurrent requests are batched dynamically through a bounded queue (<see cref="ServeOptions.MaxBatch"/>,
/// <see cref="ServeOptions.MaxWaitMs"/>, <see cref="ServeOptions.QueueCapacity"/>). See docs/serve.md.
/// </summary>
public sealed class ClipServer : IAsyncDisposable
{
    readonly ClipService _service;
    bool _disposed;

    ClipServer(WebApplication app, ClipService service, ServeOptions options)
    {
        App = app;
        _service = service;
        Options = options;
    }

    /// <summary>The ASP.NET Core application (not started).</summary>
    public WebApplication App { get; }

    public ServeOptions Options { get; }

    /// <summary>The server's metrics (also served at /metrics).</summary>
    public ServerMetrics Metrics => _service.Metrics;

    /// <summary>The id the API knows the model by (its spec's name).</summary>
    public string ModelId => _service.ModelId;

    internal InferenceBatcher Batcher => _service.Batcher;

    /// <summary>The addresses listened on, once started (with the real port where port 0 was asked for).</summary>
    public IReadOnlyList<Uri> Addresses =>
        App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.Select(a => new Uri(a)).ToList() ?? [];

    /// <summary>
    /// Loads the model (and the index) and builds the application. With <paramref name="pipeline"/> that pipeline is served
    /// (and not disposed with the server) instead of loading <see cref="ServeOptions.Model"/> / <see cref="ServeOptions.Weights"/>.
    /// </summary>
    /// <exception cref="ClipGenException">An option out of range, a model or index that cannot be loaded, or an index of another model.</exception>
    public static ClipServer Build(ServeOptions options, ClipPipeline? pipeline = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        // The index first: a missing or foreign index is reported before the model takes seconds to load.
        EmbeddingIndex? index = options.Index is null ? null : EmbeddingIndex.Load(options.Index);
        if (index is not null && options.Model is not null && pipeline is null) CheckIndex(index, options.Index!, ClipModelFactory.ResolveSpec(options.Model));
        bool owns = pipeline is null;
        if (pipeline is null)
        {
            if (options.Weights is null) throw new ClipGenException("no weights to serve: give the checkpoint (--weights)");
            pipeline = ClipPipeline.Load(options.Model, options.Weights, options.Vocabulary, options.Backend, null, options.BackendOptions);
        }
        HnswVectorIndex? graph = null;
        try
        {
            if (index is not null)
            {
                CheckIndex(index, options.Index!, pipeline.Spec);
                var graphPath = EmbeddingIndex.HnswPath(options.Index!);
                if (File.Exists(graphPath))
                {
                    graph = HnswVectorIndex.Load(graphPath, view: true);
                    if (graph.Count != index.Count || graph.Dimensions != index.Dimensions)
                        throw new ClipGenException($"{graphPath} holds {graph.Count} rows of {graph.Dimensions} but {options.Index} {index.Count} of {index.Dimensions}: it was built from another index; delete it");
                    graph.ExpansionSearch = Math.Max(new HnswOptions().ExpansionSearch, Math.Min(options.MaxK, 1024));
                    graph.Rerank = index.Exact;
                }
            }
            // Text is the common case: load the vocabulary now, so that a missing one stops the start, not the first request.
            _ = pipeline.Tokenizer;
            var metrics = new ServerMetrics();
            var service = new ClipService(options, pipeline, owns, index, graph, options.Index, metrics);
            return new ClipServer(CreateApp(options, service), service, options);
        }
        catch
        {
            graph?.Dispose();
            if (owns) pipeline.Dispose();
            throw;
        }
    }

    static void CheckIndex(EmbeddingIndex index, string path, Specs.ClipSpec spec)
    {
        if (index.Model.Length > 0 && index.Model != spec.Name)
            throw new ClipGenException($"{path} holds embeddings of model '{index.Model}', not '{spec.Name}': serve it with the model that made it");
        if (index.Dimensions != spec.EmbedDim)
            throw new ClipGenException($"{path} holds {index.Dimensions}-dimensional embeddings but {spec.Name} makes {spec.EmbedDim}");
    }

    static WebApplication CreateApp(ServeOptions options, ClipService service)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls([.. options.Urls]);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Limits.MaxRequestLineSize = 8 * 1024;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(30);
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        builder.Logging.ClearProviders();
        if (!options.Quiet)
        {
            builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
            builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
            builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        }
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = ServerJson.Options.PropertyNamingPolicy;
            o.SerializerOptions.MaxDepth = ServerJson.Options.MaxDepth;
        });
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "ClipGen serve";
            doc.Info.Description = $"CLIP embeddings, zero-shot classification and search with {service.ModelId}. Errors are {{\"error\": {{message, type, param, code}}}}.";
            return Task.CompletedTask;
        }));

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ClipGen.Server");
        app.Use((context, next) => Guard(context, next, service.Metrics, options, log));
        // A refusal of routing (no endpoint, a wrong method, a body that is not JSON) answers in the same error shape.
        app.UseStatusCodePages(c =>
        {
            var http = c.HttpContext;
            var (message, code) = http.Response.StatusCode switch
            {
                StatusCodes.Status405MethodNotAllowed => ($"{http.Request.Method} is not allowed on {http.Request.Path} (see /openapi/v1.json)", "method_not_allowed"),
                StatusCodes.Status415UnsupportedMediaType => ($"send the body as JSON with Content-Type: application/json, not '{http.Request.ContentType}'", "unsupported_media_type"),
                StatusCodes.Status404NotFound => ($"no such endpoint: {http.Request.Method} {http.Request.Path} (see /openapi/v1.json)", "not_found"),
                _ => ($"the request was refused ({http.Response.StatusCode})", (string?)null),
            };
            return ErrorWriter.WriteAsync(http, http.Response.StatusCode, message, null, code);
        });
        app.Lifetime.ApplicationStopped.Register(() => service.DisposeAsync().AsTask().GetAwaiter().GetResult());

        app.MapGet("/healthz", () => service.Health()).WithName("Health").WithSummary("Liveness: the model is loaded.");
        app.MapGet("/v1/models", () => service.Models()).WithName("ListModels").WithSummary("The served model, in OpenAI's list shape.");
        app.MapPost("/v1/embeddings", async (HttpContext c, CancellationToken ct) =>
                Results.Json(await service.EmbeddingsAsync(await ReadJsonAsync<EmbeddingsRequest>(c), ct), ServerJson.Options))
            .WithName("CreateEmbeddings").WithSummary("L2-normalised embeddings of texts and image data URLs (OpenAI's shape).")
            .Accepts<EmbeddingsRequest>("application/json").Produces<EmbeddingsResponse>().Errors();
        app.MapPost("/v1/classify", async (HttpContext c, CancellationToken ct) =>
                Results.Json(await service.ClassifyAsync(await ReadJsonAsync<ClassifyRequest>(c), ct), ServerJson.Options))
            .WithName("Classify").WithSummary("Zero-shot label probabilities of images (softmax or sigmoid, as the model was trained).")
            .Accepts<ClassifyRequest>("application/json").Produces<ClassifyResponse>().Errors();
        app.MapPost("/v1/search", async (HttpContext c, CancellationToken ct) =>
                Results.Json(await service.SearchAsync(await ReadJsonAsync<SearchRequest>(c), ct), ServerJson.Options))
            .WithName("Search").WithSummary("The k indexed images nearest to a text, an image data URL or a vector.")
            .Accepts<SearchRequest>("application/json").Produces<SearchResponse>().Errors();
        app.MapGet("/images/{id:int}", (int id) => service.Thumbnail(id))
            .WithName("Thumbnail").WithSummary("A JPEG thumbnail of an indexed image, by its row in the index.")
            .Produces(200, contentType: "image/jpeg").Produces<ErrorResponse>(404);
        app.MapGet("/metrics", () => Results.Text(service.Metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"))
            .WithName("Metrics").WithSummary("Prometheus text exposition.");
        app.MapGet("/", () => Results.Text(Page.Html, "text/html; charset=utf-8")).ExcludeFromDescription();
        app.MapOpenApi("/openapi/{documentName}.json");
        return app;
    }

    /// <summary>
    /// Every request passes here: refusals become OpenAI-style errors (never a stack trace), and each answer is counted by its
    /// route pattern and status.
    /// </summary>
    static async Task Guard(HttpContext context, Func<Task> next, ServerMetrics metrics, ServeOptions options, ILogger log)
    {
        long start = Stopwatch.GetTimestamp();
        int counted = 0;
        void Count()
        {
            if (Interlocked.Exchange(ref counted, 1) != 0) return;
            var endpoint = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
            if (endpoint.StartsWith("{*", StringComparison.Ordinal)) endpoint = "other";
            metrics.Request(endpoint, context.Request.Method, context.Response.StatusCode, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        // Counted when the headers go out, so that a client that has its answer also finds it in /metrics.
        context.Response.OnStarting(() => { Count(); return Task.CompletedTask; });
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (ApiException e)
        {
            await ErrorWriter.WriteAsync(context, e.Status, e.Message, e.Param, e.Code).ConfigureAwait(false);
        }
        catch (QueueFullException e)
        {
            await ErrorWriter.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, e.Message, null, "queue_full", options.RetryAfterSeconds).ConfigureAwait(false);
        }
        catch (ClipGenException e)
        {
            await ErrorWriter.WriteAsync(context, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            var message = e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? $"the request body is larger than this server's limit of {options.MaxBodyBytes} bytes"
                : e.Message;
            await ErrorWriter.WriteAsync(context, e.StatusCode, message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            context.Response.StatusCode = 499; // the client went away; nobody reads the answer
        }
        catch (Exception e)
        {
            log.LogError(e, "{Method} {Path} failed", context.Request.Method, context.Request.Path);
            await ErrorWriter.WriteAsync(context, StatusCodes.Status500InternalServerError, "internal server error (logged on the server)").ConfigureAwait(false);
        }
        finally
        {
            Count();
        }
    }

    /// <summary>The body as <typeparamref name="T"/>; bad JSON is a 400 naming where it went wrong.</summary>
    static async Task<T> ReadJsonAsync<T>(HttpContext context) where T : class
    {
        T? value;
        try
        {
            value = await JsonSerializer.DeserializeAsync<T>(context.Request.Body, ServerJson.Options, context.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            var path = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? null : e.Path.StartsWith("$.", StringComparison.Ordinal) ? e.Path[2..] : e.Path;
            var line = e.LineNumber is long l ? $" (line {l + 1}, byte {e.BytePositionInLine + 1})" : "";
            var reason = e.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal)
                ? $"{path ?? "the body"} has the wrong type"
                : (e.Message.Split(" Path:", 2)[0]).TrimEnd('.');
            throw ApiException.BadRequest($"invalid JSON{line}: {reason}", path, "invalid_json");
        }
        return value ?? throw ApiException.BadRequest("the body is JSON null, not an object", null, "invalid_json");
    }

    /// <summary>
    /// Builds the server, starts it, tells <paramref name="started"/> where it listens, serves until <paramref name="cancellationToken"/>
    /// is cancelled or the process is asked to stop (Ctrl+C, SIGTERM), then shuts down gracefully (what <c>clipgen serve</c> runs).
    /// </summary>
    public static async Task ServeAsync(ServeOptions options, Action<string>? started = null, CancellationToken cancellationToken = default)
    {
        await using var server = Build(options);
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        started?.Invoke($"serving {server.ModelId} on {string.Join(", ", server.Addresses)} (page at /, API at /v1, OpenAPI at /openapi/v1.json); Ctrl+C stops");
        await server.App.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts listening.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default) => App.StartAsync(cancellationToken);

    /// <summary>Stops listening, finishes the requests in flight (up to <see cref="ServeOptions.ShutdownTimeout"/>), then the queue.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => App.StopAsync(cancellationToken);

    /// <summary>Serves until <paramref name="cancellationToken"/> is cancelled or the process is asked to stop (Ctrl+C, SIGTERM).</summary>
    public Task RunAsync(CancellationToken cancellationToken = default) => App.RunAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await App.DisposeAsync().ConfigureAwait(false);
        await _service.DisposeAsync().ConfigureAwait(false);
    }
}

static class EndpointErrors
{
    /// <summary>The error responses every POST endpoint may give.</summary>
    public static RouteHandlerBuilder Errors(this RouteHandlerBuilder b) => b
        .Produces<ErrorResponse>(StatusCodes.Status400BadRequest)
        .Produces<ErrorResponse>(StatusCodes.Status413PayloadTooLarge)
        .Produces<ErrorResponse>(StatusCodes.Status503ServiceUnavailable);
}

static class Page
{
    /// <summary>The search page, embedded in the assembly.</summary>
    public static string Html { get; } = Load();

    static string Load()
    {
        using var stream = typeof(Page).Assembly.GetManifestResourceStream("ClipGen.Server.index.html")
            ?? throw new InvalidOperationException("the page resource is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
