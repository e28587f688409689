using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using ClipGen.Applications;
using Xunit;

namespace ClipGen.Server.Tests;

/// <summary>The endpoints against references: the fixture's reference features, what <c>embed</c> wrote, the library's classifier.</summary>
public class EndpointTests(IndexedServerFixture fixture) : IClassFixture<IndexedServerFixture>
{
    RunningServer S => fixture.Running;

    static async Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {text}");
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    static float[] Floats(JsonElement embedding) => embedding.ValueKind == JsonValueKind.String
        ? Decode(embedding.GetString()!)
        : embedding.EnumerateArray().Select(e => e.GetSingle()).ToArray();

    static float[] Decode(string base64)
    {
        var bytes = Convert.FromBase64String(base64);
        var result = new float[bytes.Length / 4];
        for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4 * i));
        return result;
    }

    [Theory]
    [InlineData("float")]
    [InlineData("base64")]
    public async Task Embeddings_of_the_fixture_captions_are_the_normalised_reference_text_features(string encoding)
    {
        var config = Fixtures.TinyVitConfig();
        var captions = config.GetProperty("captions").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var (features, shape) = Fixtures.ReadF32(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"), "text_features");
        int d = (int)shape[1];

        var body = await Json(await S.PostJson("/v1/embeddings", new { model = "tiny-vit", input = captions, encoding_format = encoding }));
        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Equal("tiny-vit", body.GetProperty("model").GetString());
        var data = body.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(captions.Length, data.Length);
        for (int i = 0; i < captions.Length; i++)
        {
            Assert.Equal("embedding", data[i].GetProperty("object").GetString());
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            Assert.Equal(encoding == "base64" ? JsonValueKind.String : JsonValueKind.Array, data[i].GetProperty("embedding").ValueKind);
            var expected = Fixtures.Normalized(features.AsSpan(i * d, d));
            // The fixtures' tolerance: 1e-4 on unit vectors (max |ref| ≤ 1).
            Assert.True(Fixtures.MaxAbsDiff(expected, Floats(data[i].GetProperty("embedding"))) <= 1e-4, $"caption {i}");
        }
        // Tokens after truncation: each caption's end token sits at its eot position (the long one is cut to 77).
        int tokens = config.GetProperty("derived").GetProperty("eot_positions").EnumerateArray().Sum(e => e.GetInt32() + 1);
        Assert.Equal(tokens, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(tokens, body.GetProperty("usage").GetProperty("total_tokens").GetInt32());

        // A single string is one input.
        var one = await Json(await S.PostJson("/v1/embeddings", new { model = "tiny-vit", input = captions[0], encoding_format = encoding }));
        var only = Assert.Single(one.GetProperty("data").EnumerateArray());
        Assert.True(Fixtures.MaxAbsDiff(Fixtures.Normalized(features.AsSpan(0, d)), Floats(only.GetProperty("embedding"))) <= 1e-4);
    }

    [Fact]
    public async Task Images_as_data_urls_give_what_embed_gave_under_32_concurrent_requests()
    {
        var files = fixture.Index.Files;
        int d = fixture.Index.Dimensions;
        // 32 requests at once, each with one to three images (some also with a text), none may be lost or mixed up.
        var requests = Enumerable.Range(0, 32).Select(r =>
        {
            var rows = Enumerable.Range(0, 1 + r % 3).Select(j => (r * 5 + j * 7) % files.Count).ToArray();
            var inputs = rows.Select(i => Fixtures.DataUrl(files[i])).ToList();
            if (r % 4 == 0) inputs.Insert(0, "a photo of a cat");
            return (Rows: rows, HasText: r % 4 == 0, Task: S.PostJson("/v1/embeddings", new { model = "tiny-vit", input = inputs }));
        }).ToList();
        await Task.WhenAll(requests.Select(r => r.Task));
        double worst = 0;
        foreach (var (rows, hasText, task) in requests)
        {
            var body = await Json(await task);
            var data = body.GetProperty("data").EnumerateArray().ToArray();
            Assert.Equal(rows.Length + (hasText ? 1 : 0), data.Length);
            for (int j = 0; j < rows.Length; j++)
            {
                var item = data[j + (hasText ? 1 : 0)];
                Assert.Equal(j + (hasText ? 1 : 0), item.GetProperty("index").GetInt32());
                worst = Math.Max(worst, Fixtures.MaxAbsDiff(fixture.Index[rows[j]], Floats(item.GetProperty("embedding"))));
            }
        }
        // Same pixels, same model; batches of other sizes change float rounding only.
        Assert.True(worst <= 1e-5, $"max |diff| {worst}");
        Assert.Equal(d, fixture.Index.Dimensions);
    }

    [Fact]
    public async Task Classify_gives_the_library_classifiers_probabilities()
    {
        var labels = new[] { "a red square", "a photo of a horse", "a cup of coffee", "a diagram" };
        var files = fixture.Files.Where(f => f.EndsWith("horse.png", StringComparison.Ordinal) || f.EndsWith("coffee.png", StringComparison.Ordinal)).ToArray();
        var body = await Json(await S.PostJson("/v1/classify", new { model = "tiny-vit", images = files.Select(Fixtures.DataUrl), labels, templates = new[] { "a photo of {}.", "{}" } }));
        Assert.Equal("softmax", body.GetProperty("rule").GetString());
        using var pipeline = ClipPipeline.Load(Fixtures.TinyVitSpec, Fixtures.TinyVitWeights, Fixtures.Vocab);
        using var classifier = pipeline.CreateClassifier(labels, ["a photo of {}.", "{}"]);
        var expected = classifier.Classify(files);
        var data = body.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(files.Length, data.Length);
        for (int i = 0; i < files.Length; i++)
        {
            var scores = data[i].GetProperty("scores").EnumerateArray().ToArray();
            Assert.Equal(labels, scores.Select(s => s.GetProperty("label").GetString()));
            var p = scores.Select(s => s.GetProperty("probability").GetDouble()).ToArray();
            Assert.Equal(1.0, p.Sum(), 1e-9);
            for (int j = 0; j < labels.Length; j++) Assert.Equal(expected[i].Probabilities[j], p[j], 1e-5);
            Assert.Equal(expected[i].Top.Label, data[i].GetProperty("top").GetString());
        }
    }

    [Fact]
    public async Task Search_by_text_image_and_vector_ranks_the_index_as_the_library_does()
    {
        var index = fixture.Index;
        // By image: an indexed file finds itself first, with cosine 1.
        var horse = fixture.Files.Single(f => f.EndsWith("horse.png", StringComparison.Ordinal));
        int horseRow = index.Files.ToList().IndexOf(horse);
        var byImage = await Json(await S.PostJson("/v1/search", new { query = Fixtures.DataUrl(horse), k = 3 }));
        Assert.Equal("image", byImage.GetProperty("query_kind").GetString());
        var first = byImage.GetProperty("data")[0];
        Assert.Equal(horseRow, first.GetProperty("id").GetInt32());
        Assert.Equal(horse, first.GetProperty("path").GetString());
        Assert.Equal(1.0, first.GetProperty("score").GetDouble(), 1e-5);
        Assert.Equal($"/images/{horseRow}", first.GetProperty("thumbnail").GetString());
        Assert.Equal("horse.png", first.GetProperty("metadata").GetProperty("file_name").GetString());
        Assert.Equal(3, byImage.GetProperty("data").GetArrayLength());

        // By text: the same ranking as the index searched with the text's embedding.
        using var pipeline = ClipPipeline.Load(Fixtures.TinyVitSpec, Fixtures.TinyVitWeights, Fixtures.Vocab);
        var query = pipeline.EmbedTexts(["a red car"]).Data;
        var expected = index.Search(query, 5);
        var byText = await Json(await S.PostJson("/v1/search", new { model = "tiny-vit", query = "a red car", k = 5 }));
        var hits = byText.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(expected.Select(h => h.Row), hits.Select(h => h.GetProperty("id").GetInt32()));
        for (int i = 0; i < hits.Length; i++) Assert.Equal(expected[i].Score, hits[i].GetProperty("score").GetDouble(), 1e-5);

        // By vector (not normalised: the server normalises it), and k larger than the index gives every row.
        var byVector = await Json(await S.PostJson("/v1/search", new { vector = query.Select(x => x * 3).ToArray(), k = 1000 }));
        Assert.Equal(index.Count, byVector.GetProperty("data").GetArrayLength());
        Assert.Equal(expected[0].Row, byVector.GetProperty("data")[0].GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task Thumbnails_are_served_for_index_rows_only()
    {
        var response = await S.Client.GetAsync("/images/0");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/jpeg", response.Content.Headers.ContentType?.MediaType);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        using var bitmap = SkiaSharp.SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        // CLIP.png is larger than a thumbnail: its longest side is cut to 256.
        int clip = fixture.Index.Files.ToList().FindIndex(f => f.EndsWith("CLIP.png", StringComparison.Ordinal));
        using (var big = SkiaSharp.SKBitmap.Decode(await S.Client.GetByteArrayAsync($"/images/{clip}")))
            Assert.Equal(256, Math.Max(big.Width, big.Height));

        foreach (var path in new[] { $"/images/{fixture.Index.Count}", "/images/-1", "/images/..%2F..%2Fetc%2Fpasswd", "/images/%2Fetc%2Fpasswd", "/etc/passwd" })
        {
            var r = await S.Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
            var error = await Json(r, HttpStatusCode.NotFound);
            Assert.False(string.IsNullOrEmpty(error.GetProperty("error").GetProperty("message").GetString()));
        }
    }

    [Fact]
    public async Task Health_models_page_and_openapi_document()
    {
        var health = await Json(await S.Client.GetAsync("/healthz"));
        Assert.Equal("ok", health.GetProperty("status").GetString());

        var models = await Json(await S.Client.GetAsync("/v1/models"));
        var model = Assert.Single(models.GetProperty("data").EnumerateArray());
        Assert.Equal("tiny-vit", model.GetProperty("id").GetString());
        Assert.Equal(32, model.GetProperty("dimensions").GetInt32());
        Assert.Equal(fixture.Index.Count, model.GetProperty("indexed_images").GetInt32());

        var page = await S.Client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("/v1/search", await page.Content.ReadAsStringAsync());

        var openapi = await Json(await S.Client.GetAsync("/openapi/v1.json"));
        var paths = openapi.GetProperty("paths");
        foreach (var p in new[] { "/healthz", "/v1/models", "/v1/embeddings", "/v1/classify", "/v1/search", "/images/{id}", "/metrics" })
            Assert.True(paths.TryGetProperty(p, out _), $"OpenAPI lacks {p}");
        var post = paths.GetProperty("/v1/embeddings").GetProperty("post");
        Assert.True(post.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.True(post.GetProperty("responses").TryGetProperty("400", out _));
        Assert.True(openapi.GetProperty("components").GetProperty("schemas").TryGetProperty("EmbeddingsRequest", out _));
    }
}
