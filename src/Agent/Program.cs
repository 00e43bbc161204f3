namespace PgOtelGateway.Agent;

internal static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("pgotel-agent: the collector arrives with the agent issue.");
        return args.Length == 0 ? 0 : 2;
    }
}
