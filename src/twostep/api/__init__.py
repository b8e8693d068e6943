from ninja import NinjaAPI

api = NinjaAPI(title="twostep", version="1", urls_namespace="api")
