namespace PgOtelGateway.Tests.Common;
