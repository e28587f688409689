using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClipGen.Server;

static class ServerJson
{
    /// <summary>snake_case names as OpenAI's API; unknown request properties are ignored (OpenAI clients send <c>user</c>, …).</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        MaxDepth = 16,
    };
}

/// <summary>POST /v1/embeddings, OpenAI's shape. <c>input</c> is a string or an array of strings; a <c>data:image/…;base64,</c> string is an image.</summary>
public sealed record EmbeddingsRequest
{
    /// <summary>The served model's id (see GET /v1/models); another id is refused.</summary>
    public string? Model { get; init; }
    /// <summary>A string or an array of strings.</summary>
    public JsonElement Input { get; init; }
    /// <summary><c>float</c> (default) or <c>base64</c> (little-endian float32).</summary>
    public string? EncodingFormat { get; init; }
    /// <summary>If given, must equal the model's embedding width (CLIP embeddings are not shortened).</summary>
    public int? Dimensions { get; init; }
    /// <summary>Accepted and ignored, as a hint for abuse monitoring in OpenAI's API.</summary>
    public string? User { get; init; }
}

public sealed record EmbeddingsResponse(string Object, IReadOnlyList<EmbeddingItem> Data, string Model, Usage Usage);

/// <summary>One embedding: <c>embedding</c> is an array of floats, or a base64 string of little-endian float32.</summary>
public sealed record EmbeddingItem(string Object, int Index, object Embedding);

/// <summary>Tokens of the text inputs after truncation to the context (images count none).</summary>
public sealed record Usage(int PromptTokens, int TotalTokens);

/// <summary>GET /v1/models.</summary>
public sealed record ModelList(string Object, IReadOnlyList<ModelInfo> Data);

public sealed record ModelInfo(string Id, string Object, long Created, string OwnedBy, int Dimensions, int ContextLength, int ImageSize,
    string ProbabilityRule, string Backend, int IndexedImages);

/// <summary>POST /v1/classify: images as data URLs, each scored against every label.</summary>
public sealed record ClassifyRequest
{
    public string? Model { get; init; }
    /// <summary><c>data:image/…;base64,</c> URLs.</summary>
    public IReadOnlyList<string>? Images { get; init; }
    /// <summary>Class labels, distinct and non-blank.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary>Prompt templates with <c>{}</c> for the label; default: the model family's (<c>a photo of a {}.</c> for CLIP).</summary>
    public IReadOnlyList<string>? Templates { get; init; }
}

public sealed record ClassifyResponse(string Object, string Model, string Rule, IReadOnlyList<string> Labels, IReadOnlyList<ClassifyItem> Data);

/// <summary>One image's probabilities, in the labels' order.</summary>
public sealed record ClassifyItem(int Index, IReadOnlyList<LabelProbability> Scores, string Top);

public sealed record LabelProbability(string Label, double Probability);

/// <summary>POST /v1/search: one of <c>query</c> (text, or an image data URL) and <c>vector</c>, plus <c>k</c>.</summary>
public sealed record SearchRequest
{
    public string? Model { get; init; }
    /// <summary>A text, or a <c>data:image/…;base64,</c> URL to search by image.</summary>
    public string? Query { get; init; }
    /// <summary>A vector of the model's width (it is normalised).</summary>
    public float[]? Vector { get; init; }
    /// <summary>Results wanted, from 1 to the server's max k (default 10).</summary>
    public int? K { get; init; }
}

public sealed record SearchResponse(string Object, string Model, string QueryKind, IReadOnlyList<SearchItem> Data);

/// <summary>One hit: the index row (its id), the indexed path, cosine similarity, and where its thumbnail is served.</summary>
public sealed record SearchItem(int Rank, int Id, string Path, double Score, string Thumbnail, IReadOnlyDictionary<string, string> Metadata);

public sealed record Health(string Status, string Model, int QueueDepth);
