from django.shortcuts import render


def home(request):
    claims = request.session.get("twostep", {}) if request.user.is_authenticated else {}
    return render(request, "home.html", {"claims": claims, "failed": "failed" in request.GET})
