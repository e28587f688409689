using System.Text.Json;
using ClipGen.Applications;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen search</c>: ranks the images of an embedding index by cosine similarity to a text or an image.</summary>
sealed class SearchCommand : ICommand
{
    public string Name => "search";
    public string Summary => "rank the images of an index (from 'clipgen embed') by similarity to a text or an image";
    public string Usage => "clipgen search --index <embeddings.safetensors> " + AppHelpers.ModelUsage + " (--query \"a red car\" | --image q.jpg) [--top 10] [--json]";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var indexPath = args.Require("index");
        var model = AppHelpers.ModelOptions(args);
        var query = args.Get("query");
        var image = args.Get("image");
        int top = args.GetInt("top", 10);
        bool json = args.Has("json");
        args.RejectUnknown();
        if ((query is null) == (image is null)) throw new CliUsageException("give exactly one of --query TEXT and --image FILE");
        if (top <= 0) throw new CliUsageException($"--top must be positive, not {top}");
        if (query is not null && string.IsNullOrWhiteSpace(query)) throw new ClipGenException("--query is empty");

        var index = EmbeddingIndex.Load(indexPath);
        if (model.Model is not null) Check(index, indexPath, Modeling.ClipModelFactory.ResolveSpec(model.Model));
        if (image is not null && !File.Exists(image)) throw new ClipGenException($"{image}: file not found");

        using var pipeline = AppHelpers.Load(model, stderr);
        Check(index, indexPath, pipeline.Spec);
        using var q = query is not null ? pipeline.EmbedTexts([query]) : pipeline.EmbedImages([image!]);
        var hits = index.Search(q.data<float>().ToArray(), top);

        if (json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartArray();
                foreach (var h in hits)
                {
                    w.WriteStartObject();
                    w.WriteString("image", h.File);
                    w.WriteNumber("score", h.Score);
                    w.WriteNumber("row", h.Row);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            int rank = 1;
            foreach (var h in hits) stdout.WriteLine($"{rank++,4}  {AppHelpers.Score(h.Score)}  {h.File}");
        }
        return 0;
    }

    static void Check(EmbeddingIndex index, string indexPath, Specs.ClipSpec spec)
    {
        if (index.Model.Length > 0 && index.Model != spec.Name)
            throw new ClipGenException($"{indexPath} holds embeddings of model '{index.Model}', not '{spec.Name}': search it with the model that made it");
        if (index.Dimensions != spec.EmbedDim)
            throw new ClipGenException($"{indexPath} holds {index.Dimensions}-dimensional embeddings but {spec.Name} makes {spec.EmbedDim}");
    }
}
