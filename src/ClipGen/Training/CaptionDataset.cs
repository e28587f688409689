namespace ClipGen.Training;

/// <summary>An image–caption dataset for contrastive training.</summary>
public interface ICaptionDataset
{
    int Count { get; }
    /// <summary>Side of the square images it produces (the model's input size).</summary>
    int ImageSize { get; }
    /// <summary>The caption of item <paramref name="index"/>.</summary>
    string Caption(int index);
    /// <summary>
    /// Writes item <paramref name="index"/>'s preprocessed pixels ([3, R, R], normalised) into <paramref name="destination"/>.
    /// With <paramref name="augment"/>, applies the training augmentation drawn from that generator.
    /// </summary>
    void LoadImage(int index, Span<float> destination, Random? augment);
}
