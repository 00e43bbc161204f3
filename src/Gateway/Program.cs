namespace PgOtelGateway.Gateway;

internal static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("pgotel-gateway: ingest arrives with the gateway issue.");
        return args.Length == 0 ? 0 : 2;
    }
}
