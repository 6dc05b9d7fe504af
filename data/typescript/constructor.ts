constructor(private readonly http: HttpClient) {
  this.cache = new Map<string, User>();
}
