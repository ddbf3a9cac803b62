"""One module per resource. Each exposes `router: fastapi.APIRouter`; api.app includes every
module in this package, so adding a resource never edits a shared file."""
