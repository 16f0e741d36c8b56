import Foundation
import Hummingbird

/// What a request did wrong, answered as `{"error": "..."}` with a 4xx status. A bad field is named first
/// (`steps: must be an integer from 1 to 100`), so a script or the page can point at it.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    public let status: HTTPResponse.Status
    public let message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// A field of the request (body, query or path) that is missing or out of bounds.
    public static func field(_ name: String, _ problem: String) -> APIError {
        APIError(.badRequest, "\(name): \(problem)")
    }

    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }

    public var description: String { message }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try JSONResponse.response(["error": message], status: status)
    }
}

/// Turns every error a handler throws into a JSON answer: Hummingbird's own (unknown route, body too large) keep
/// their status; anything else is a 500 with its description, and the server goes on.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, error.body ?? error.status.reasonPhrase)
        } catch let error as any HTTPResponseError {
            throw APIError(error.status, error.status.reasonPhrase)
        } catch {
            throw APIError(.internalServerError, "\(error)")
        }
    }
}
