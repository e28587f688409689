using Google.Protobuf;

namespace ClipGen.Text;

/// <summary>
/// The parts of a SentencePiece model file (<c>sentencepiece_model.proto</c>'s <c>ModelProto</c>) that ClipGen checks before
/// handing the bytes to Microsoft.ML.Tokenizers, read with Google.Protobuf's wire-format reader (the generated message
/// classes inside Microsoft.ML.Tokenizers are internal). Defaults are the proto2 defaults of that file.
/// </summary>
sealed class SentencePieceModelFile
{
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }
    public enum ModelKind { Unigram = 1, Bpe = 2, Word = 3, Char = 4 }

    // Field numbers of sentencepiece_model.proto.
    const int ModelPieces = 1, ModelTrainerSpec = 2, ModelNormalizerSpec = 3;
    const int PiecePiece = 1, PieceScore = 2, PieceTypeField = 3;
    const int TrainerModelType = 3, TrainerByteFallback = 35, TrainerUnkId = 40, TrainerBosId = 41, TrainerEosId = 42,
        TrainerPadId = 43, TrainerBosPiece = 46;
    const int NormalizerName = 1, NormalizerAddDummyPrefix = 3, NormalizerRemoveExtraWhitespaces = 4;

    public required string Source { get; init; }
    public List<(string Piece, PieceType Type)> Pieces { get; } = [];
    public ModelKind ModelType { get; private set; } = ModelKind.Unigram;
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public bool ByteFallback { get; private set; }
    public string NormalizerRule { get; private set; } = "";
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;

    /// <summary>Reads <paramref name="data"/>; a <see cref="ClipGenException"/> naming <paramref name="source"/> when it is not a usable model.</summary>
    public static SentencePieceModelFile Parse(byte[] data, string source)
    {
        var m = new SentencePieceModelFile { Source = source };
        try
        {
            var input = new CodedInputStream(data);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                bool len = WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited;
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case ModelPieces when len: m.ReadPiece(input.ReadBytes()); break;
                    case ModelTrainerSpec when len: m.ReadTrainerSpec(input.ReadBytes()); break;
                    case ModelNormalizerSpec when len: m.ReadNormalizerSpec(input.ReadBytes()); break;
                    default: input.SkipLastField(); break;
                }
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ClipGenException($"{source}: not a SentencePiece model file ({e.Message})", e);
        }
        m.Validate();
        return m;
    }

    void ReadPiece(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string piece = "";
        var type = PieceType.Normal;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case PiecePiece when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited: piece = input.ReadString(); break;
                case PieceTypeField when WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint: type = (PieceType)input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        Pieces.Add((piece, type));
    }

    void ReadTrainerSpec(ByteString bytes)
    {
        // Repeated occurrences of the message merge field by field (protobuf semantics): the last value of a field wins.
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagWireType(tag) != WireFormat.WireType.Varint) { input.SkipLastField(); continue; }
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case TrainerModelType: ModelType = (ModelKind)input.ReadEnum(); break;
                case TrainerByteFallback: ByteFallback = input.ReadBool(); break;
                case TrainerUnkId: UnkId = input.ReadInt32(); break;
                case TrainerBosId: BosId = input.ReadInt32(); break;
                case TrainerEosId: EosId = input.ReadInt32(); break;
                case TrainerPadId: PadId = input.ReadInt32(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    void ReadNormalizerSpec(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var wire = WireFormat.GetTagWireType(tag);
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case NormalizerName when wire == WireFormat.WireType.LengthDelimited: NormalizerRule = input.ReadString(); break;
                case NormalizerAddDummyPrefix when wire == WireFormat.WireType.Varint: AddDummyPrefix = input.ReadBool(); break;
                case NormalizerRemoveExtraWhitespaces when wire == WireFormat.WireType.Varint: RemoveExtraWhitespaces = input.ReadBool(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    void Validate()
    {
        if (Pieces.Count == 0) throw new ClipGenException($"{Source}: not a SentencePiece model file (it has no pieces)");
        if (ModelType is not (ModelKind.Unigram or ModelKind.Bpe))
            throw new ClipGenException($"{Source}: SentencePiece model type '{ModelType}' is not supported (unigram and BPE are)");
        void Check(int id, string what, bool required)
        {
            if (id < 0 && !required) return;
            if (id < 0 || id >= Pieces.Count)
                throw new ClipGenException($"{Source}: the model's {what} id {id} is outside its {Pieces.Count} pieces");
        }
        Check(UnkId, "<unk>", true);
        Check(EosId, "end-of-text (</s>)", false);
        Check(BosId, "start-of-text (<s>)", false);
        Check(PadId, "padding", false);
        if (Pieces[UnkId].Type != PieceType.Unknown)
            throw new ClipGenException($"{Source}: piece {UnkId} ('{Pieces[UnkId].Piece}'), the model's unk id, is not of type UNKNOWN");
    }

    /// <summary>
    /// <paramref name="data"/> with one more piece, a CONTROL piece that no text can produce, made the start-of-text
    /// piece: appended as a second <c>pieces</c> entry and a second <c>trainer_spec</c> holding only <c>bos_id</c> and
    /// <c>bos_piece</c>, which protobuf parsers merge into the first (repeated fields append, singular fields take the last
    /// value). Returns the new piece's id (= the old piece count).
    /// </summary>
    public byte[] WithControlStartPiece(byte[] data, out int bosId)
    {
        bosId = Pieces.Count;
        var names = new HashSet<string>(Pieces.Select(p => p.Piece), StringComparer.Ordinal);
        string name = "<clipgen-unused-bos>";
        for (int k = 2; names.Contains(name); k++) name = $"<clipgen-unused-bos-{k}>";

        using var ms = new MemoryStream(data.Length + 64);
        ms.Write(data);
        var output = new CodedOutputStream(ms, leaveOpen: true);
        output.WriteTag(ModelPieces, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(Message(o =>
        {
            o.WriteTag(PiecePiece, WireFormat.WireType.LengthDelimited); o.WriteString(name);
            o.WriteTag(PieceScore, WireFormat.WireType.Fixed32); o.WriteFloat(0f);
            o.WriteTag(PieceTypeField, WireFormat.WireType.Varint); o.WriteEnum((int)PieceType.Control);
        }));
        int id = bosId;
        output.WriteTag(ModelTrainerSpec, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(Message(o =>
        {
            o.WriteTag(TrainerBosId, WireFormat.WireType.Varint); o.WriteInt32(id);
            o.WriteTag(TrainerBosPiece, WireFormat.WireType.LengthDelimited); o.WriteString(name);
        }));
        output.Flush();
        return ms.ToArray();
    }

    static ByteString Message(Action<CodedOutputStream> write)
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms, leaveOpen: true);
        write(o);
        o.Flush();
        return ByteString.CopyFrom(ms.ToArray());
    }
}
