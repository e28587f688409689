using System.Reflection;
using System.Text.Json;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Tests.Models;

/// <summary>The shipped JSON schema names exactly the keys the parser accepts.</summary>
public class SpecSchemaTests
{
    static string[] Keys(string field) =>
        (string[])typeof(SpecResolver).GetField(field, BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;

    [Fact]
    public void Schema_properties_equal_parser_keys()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "specs", "schema", "clip-spec.schema.json")));
        var props = doc.RootElement.GetProperty("properties");
        static string[] Names(JsonElement e) => e.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(Keys("TopKeys").Order(StringComparer.Ordinal), Names(props));
        Assert.Equal(Keys("VisionKeys").Order(StringComparer.Ordinal), Names(props.GetProperty("vision").GetProperty("properties")));
        Assert.Equal(Keys("TextKeys").Order(StringComparer.Ordinal), Names(props.GetProperty("text").GetProperty("properties")));
        Assert.Equal(Keys("PreprocessKeys").Order(StringComparer.Ordinal), Names(props.GetProperty("preprocess").GetProperty("properties")));
        Assert.Equal(Keys("TokenizerKeys").Order(StringComparer.Ordinal), Names(props.GetProperty("tokenizer").GetProperty("properties")));
        var pretrained = props.GetProperty("pretrained").GetProperty("additionalProperties").GetProperty("properties");
        Assert.Equal(Keys("PretrainedKeys").Order(StringComparer.Ordinal), Names(pretrained));
        Assert.Equal(SpecResolver.PretrainedFormats, pretrained.GetProperty("format").GetProperty("enum").EnumerateArray().Select(x => x.GetString()).ToArray());
        var tokenizerKinds = props.GetProperty("tokenizer").GetProperty("properties").GetProperty("kind").GetProperty("enum").EnumerateArray().Select(x => x.GetString()).ToArray();
        Assert.Equal(SpecResolver.TokenizerKinds, tokenizerKinds);
        // The enums of the schema are the words of the spec format's one table.
        static string?[] Enum(JsonElement e) => e.GetProperty("enum").EnumerateArray().Select(x => x.GetString()).ToArray();
        var vision = props.GetProperty("vision").GetProperty("properties");
        var text = props.GetProperty("text").GetProperty("properties");
        Assert.Equal(SpecWords.Activation.Words, Enum(props.GetProperty("activation")));
        Assert.Equal(SpecWords.Activation.Words, Enum(vision.GetProperty("activation")));
        Assert.Equal(SpecWords.Activation.Words, Enum(text.GetProperty("activation")));
        Assert.Equal(SpecWords.VisionPooling.Words, Enum(vision.GetProperty("pool")));
        Assert.Equal(SpecWords.TextPooling.Words, Enum(text.GetProperty("pooling")));
        Assert.Equal(SpecWords.Projection.Words, Enum(vision.GetProperty("proj")));
        Assert.Equal(SpecWords.Projection.Words, Enum(text.GetProperty("proj")));
    }

    [Fact]
    public void Every_builtin_spec_file_parses_without_diagnostics()
    {
        var docs = Directory.GetFiles(Path.Combine(Fixtures.RepoRoot, "specs"), "*.yaml").Select(p => SpecDocument.Parse(p, File.ReadAllText(p))).ToList();
        var res = SpecResolver.Resolve(docs);
        Assert.Empty(res.Diagnostics);
        Assert.Equal(docs.Count, res.Specs.Count);
    }
}
